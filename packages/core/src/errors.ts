import { PeftError } from '@peft-ts/config';
import { brandClass } from '@peft-ts/config/internal';

// The root error lives in @peft-ts/config, the package every other one may import; core re-exports it as before.
export { PeftError };

/** A tensor was requested from a shape-only (meta) parameter. */
export class MetaTensorError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:MetaTensorError');
  }
}

/** A dotted module path does not exist, or a replacement does not fit there. */
export class ModulePathError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:ModulePathError');
  }
}

/** A state dict does not fit the module: missing, unexpected or mis-shaped entries (all listed). */
export class StateDictError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:StateDictError');
  }

  constructor(
    message: string,
    readonly missingKeys: string[] = [],
    readonly unexpectedKeys: string[] = [],
    readonly mismatchedKeys: string[] = [],
  ) {
    super(message);
  }
}

/** Adapter injection found nothing to wrap, or found modules no registered method can wrap. */
export class AdapterInjectionError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:AdapterInjectionError');
  }
}

/** An adapter name that the model or layer does not hold. */
export class UnknownAdapterError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:UnknownAdapterError');
  }
}

/** A merge was requested that cannot be done (non-finite result, unsupported base layer, shared weights). */
export class MergeError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:MergeError');
  }
}

/** A stored tensor holds NaN or ±Inf where the loader was told to refuse them (`strict`). */
export class NonFiniteTensorError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:NonFiniteTensorError');
  }
}

/** A stored tensor has a dtype the loader cannot use (e.g. an integer tensor among float weights). */
export class TensorDtypeError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:TensorDtypeError');
  }
}
