import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { PeftError } from './peft-error.js';

describe('PeftError', () => {
  it('keeps the error that caused it, and names itself after its class', () => {
    const cause = new SyntaxError('unexpected token');
    const error = new PeftError('config.json: not JSON', { cause });
    expect([error.cause, error.name, error.message]).toEqual([cause, 'PeftError', 'config.json: not JSON']);
    class LoaderError extends PeftError {}
    expect(new LoaderError('x').name).toBe('LoaderError');
  });

  it('is the root of ConfigError', () => {
    const error = new ConfigError([{ path: 'r', message: 'expected a positive integer' }], 'adapter_config.json');
    expect([error instanceof PeftError, error.name, error.message]).toEqual([true, 'ConfigError', 'adapter_config.json: r: expected a positive integer']);
  });
});
