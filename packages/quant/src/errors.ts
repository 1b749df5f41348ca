import { PeftError } from '@peft-ts/config';
import { brandClass } from '@peft-ts/config/internal';

/**
 * Thrown for invalid quantization input (bad blocksize, size mismatch, malformed quant state). Imported from the
 * zod-only config package rather than core, so the typed-array numerics stay free of tfjs; the tfjs layers throw
 * `PeftError`.
 */
export class QuantError extends PeftError {
  static {
    brandClass(this, '@peft-ts/quant:QuantError');
  }
}
