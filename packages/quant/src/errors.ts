/**
 * Thrown for invalid quantization input (bad blocksize, size mismatch, malformed quant state).
 * Local to the typed-array numerics, which stay free of tfjs (`@peft-ts/core`, which has `PeftError`, pulls it in);
 * the tfjs layers throw `PeftError`.
 */
export class QuantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}
