import { brandClass } from './class-brand.js';

/**
 * Base class of every error peft-ts throws on purpose, so callers can tell them from bugs. It lives in the lowest
 * package, which every other one may import (`@peft-ts/core` re-exports it); `options.cause` keeps the error that
 * led to it (ES2022).
 */
export class PeftError extends Error {
  static {
    brandClass(this, '@peft-ts/config:PeftError');
  }

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
