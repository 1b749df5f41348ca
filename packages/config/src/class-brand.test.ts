import { describe, expect, it, vi } from 'vitest';
import { brandClass } from './class-brand.js';
import { ConfigError } from './config-error.js';
import { PeftError } from './peft-error.js';

/** One evaluation of a small branded hierarchy, as each installed copy of a package evaluates its classes. */
function evaluateCopy() {
  class Layer {
    static {
      brandClass(this, '@peft-ts/test:Layer');
    }
  }
  class Dense extends Layer {
    static {
      brandClass(this, '@peft-ts/test:Dense');
    }
  }
  class Unbranded extends Dense {}
  return { Layer, Dense, Unbranded };
}

describe('brandClass', () => {
  const first = evaluateCopy();
  const second = evaluateCopy();

  it('keeps instanceof within one copy: subclasses match their bases, bases do not match subclasses', () => {
    const { Layer, Dense, Unbranded } = first;
    expect([new Dense() instanceof Layer, new Unbranded() instanceof Layer, new Unbranded() instanceof Dense]).toEqual([true, true, true]);
    expect([new Layer() instanceof Dense, new Layer() instanceof Unbranded, new Dense() instanceof Unbranded]).toEqual([false, false, false]);
  });

  it('recognises instances of another copy of the class and of its subclasses', () => {
    expect([new second.Layer() instanceof first.Layer, new second.Dense() instanceof first.Layer, new second.Dense() instanceof first.Dense]).toEqual([
      true,
      true,
      true,
    ]);
    expect([new second.Layer() instanceof first.Dense, new first.Layer() instanceof second.Dense]).toEqual([false, false]);
  });

  it('gives a subclass without a brand of its own ordinary instanceof', () => {
    expect(new second.Unbranded() instanceof first.Unbranded).toBe(false);
    expect(new first.Unbranded() instanceof first.Unbranded).toBe(true);
  });

  it('matches nothing else: look-alike classes, plain objects, primitives, the prototype itself', () => {
    class LookAlike {}
    const samples: unknown[] = [new LookAlike(), {}, Object.create(null), null, undefined, 1, 'Layer', first.Layer, first.Layer.prototype];
    expect(samples.map((sample) => sample instanceof first.Layer)).toEqual(samples.map(() => false));
    expect(Object.create(first.Dense.prototype) instanceof first.Layer).toBe(true);
  });

  it('lets PeftError and ConfigError of one copy recognise errors thrown by another copy', async () => {
    vi.resetModules();
    const copy = await import('./config-error.js');
    const error = new copy.ConfigError([{ path: 'r', message: 'expected a positive integer' }]);
    expect(copy.ConfigError).not.toBe(ConfigError);
    expect([error instanceof PeftError, error instanceof ConfigError, error instanceof Error]).toEqual([true, true, true]);
    expect(new PeftError('x') instanceof copy.ConfigError).toBe(false);
  });

  it('loads a second copy of the whole package beside the first, schemas and JSON Schema ids included', async () => {
    vi.resetModules();
    const copy = await import('./index.js');
    expect(copy.ConfigError).not.toBe(ConfigError);
    expect((await import('./json-schemas.js')).generateJsonSchemaFiles()['lora-config.schema.json']).toContain('"JsonValue"');
    expect(() => copy.createLoraConfig({ r: 0 })).toThrow(ConfigError);
  });
});
