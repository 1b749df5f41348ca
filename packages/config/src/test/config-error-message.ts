import { expect } from 'vitest';
import { ConfigError } from '../config-error.js';

/** The message of the ConfigError `action` throws; fails the test if it throws anything else or nothing. */
export function configErrorMessage(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}
