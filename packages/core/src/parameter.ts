import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { MetaTensorError, PeftError } from './errors.js';

export type ParameterDtype = 'float32' | 'int32' | 'bool';

export type ParameterSpec = { readonly shape: readonly number[]; readonly dtype?: ParameterDtype };

/**
 * A named tensor slot of a module. It is either materialised (backed by a tf.Variable) or meta
 * (shape and dtype only), which lets a 7B model be planned without allocating it. Sharing one
 * Parameter object between modules shares the weight (layer replication relies on this).
 */
export class Parameter {
  static {
    brandClass(this, '@peft-ts/core:Parameter');
  }

  readonly shape: readonly number[];
  readonly dtype: ParameterDtype;
  /**
   * Parameters this slot counts as (PyTorch's `numel` as PEFT's `get_nb_trainable_parameters` counts it), which
   * `size` is not for packed storage: a packed weight stands for the values it holds, quantization statistics
   * (bnb keeps them outside the parameter) for none.
   */
  readonly logicalSize: number;
  private variable: tf.Variable | null = null;
  private requiresGradFlag: boolean;

  constructor(init: tf.Tensor | ParameterSpec, options: { requiresGrad?: boolean; logicalSize?: number } = {}) {
    this.requiresGradFlag = options.requiresGrad ?? true;
    this.shape = [...init.shape];
    // Only a caller's count is checked: a shape's own size may pass 2^53 for a config that later fails naming its file.
    const { logicalSize } = options;
    if (logicalSize !== undefined && (!Number.isSafeInteger(logicalSize) || logicalSize < 0)) {
      throw new PeftError(`parameter of shape [${this.shape}]: logicalSize must be a non-negative integer, got ${logicalSize}`);
    }
    this.logicalSize = logicalSize ?? this.size;
    if (init instanceof tf.Tensor) {
      this.dtype = init.dtype as ParameterDtype;
      this.variable = tf.variable(init, this.requiresGradFlag);
    } else {
      this.dtype = init.dtype ?? 'float32';
    }
  }

  static meta(shape: readonly number[], dtype: ParameterDtype = 'float32'): Parameter {
    return new Parameter({ shape, dtype });
  }

  get isMeta(): boolean {
    return this.variable === null;
  }

  get size(): number {
    return this.shape.reduce((product, dimension) => product * dimension, 1);
  }

  /** Bytes the backend holds for this parameter: bool tensors store one byte per element. */
  get byteLength(): number {
    return this.size * (this.dtype === 'bool' ? 1 : 4);
  }

  get requiresGrad(): boolean {
    return this.requiresGradFlag;
  }

  set requiresGrad(value: boolean) {
    this.requiresGradFlag = value;
    if (this.variable) this.variable.trainable = value;
  }

  get value(): tf.Variable {
    if (!this.variable) {
      throw new MetaTensorError(`parameter of shape [${this.shape}] is shape-only (meta); load or initialise it first`);
    }
    return this.variable;
  }

  /**
   * Sets the value (materialising a meta parameter). The tensor must match shape and dtype; the
   * caller keeps ownership of `tensor` (the variable holds its own reference to the data).
   */
  set(tensor: tf.Tensor, name = 'parameter'): void {
    if (!sameShape(tensor.shape, this.shape)) {
      throw new PeftError(`${name}: expected shape [${this.shape}], got [${tensor.shape}]`);
    }
    if (tensor.dtype !== this.dtype) {
      throw new PeftError(`${name}: expected dtype ${this.dtype}, got ${tensor.dtype}`);
    }
    if (this.variable) {
      this.variable.assign(tensor);
    } else {
      this.variable = tf.variable(tensor, this.requiresGradFlag);
    }
  }

  dispose(): void {
    this.variable?.dispose();
    this.variable = null;
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dimension, index) => dimension === b[index]);
}

/** An independent copy (its own tensor, same trainability and logical size); a meta parameter stays meta. */
export function copyParameter(parameter: Parameter): Parameter {
  const { logicalSize } = parameter;
  if (parameter.isMeta) return new Parameter({ shape: parameter.shape, dtype: parameter.dtype }, { logicalSize });
  const data = parameter.value.clone();
  const copy = new Parameter(data, { requiresGrad: parameter.requiresGrad, logicalSize });
  data.dispose();
  return copy;
}
