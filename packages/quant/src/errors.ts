/**
 * Thrown for invalid quantization input (bad blocksize, size mismatch, malformed quant state).
 * Local to this package because importing `@peft-ts/core` (which has `PeftError`) would pull in tfjs.
 */
export class QuantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
