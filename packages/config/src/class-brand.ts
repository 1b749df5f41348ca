/**
 * Makes `value instanceof target` true for instances of `target` from every installed copy of its package, not
 * only from the copy that evaluated this class: an application can end up with two copies of a package (say lora
 * resolved against one copy of core and the user's model built with another), and plain `instanceof` compares class
 * objects, which differ between copies. Call it from the class's static block with a key unique across peft-ts,
 * `'<package>:<Class>'`:
 *
 * ```ts
 * export class Linear extends Module {
 *   static { brandClass(this, '@peft-ts/core:Linear'); }
 * }
 * ```
 *
 * The key goes on `target.prototype` under `Symbol.for(key)`, which every copy shares, and `target` gets a
 * `Symbol.hasInstance` that looks for it on the value's prototype chain, so subclasses of `target` match as they
 * always did and an unrelated class that merely looks alike does not. A subclass without a brand of its own
 * inherits that method and gets ordinary `instanceof` from it. TypeScript keeps narrowing by the class as before.
 * The key carries no version: copies of one package are told apart only when a breaking change gives the class
 * a new key.
 */
export function brandClass(target: abstract new (...args: never[]) => object, key: string): void {
  const brand = Symbol.for(key);
  Object.defineProperty(target.prototype, brand, { value: true });
  Object.defineProperty(target, Symbol.hasInstance, {
    value(this: unknown, value: unknown): boolean {
      if (this !== target) return Function.prototype[Symbol.hasInstance].call(this, value);
      // Like ordinary instanceof, the chain starts at the value's prototype: `target.prototype` is no instance.
      const prototype: unknown = (typeof value === 'object' || typeof value === 'function') && value !== null ? Object.getPrototypeOf(value) : null;
      return prototype !== null && (prototype as Record<symbol, unknown>)[brand] === true;
    },
  });
}
