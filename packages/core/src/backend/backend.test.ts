import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendError, initBackend, nativeBackendAvailable } from './index.js';

describe.skipIf(!(await nativeBackendAvailable()))('the native backend', () => {
  const saved = process.env.PEFT_TS_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.PEFT_TS_THREADS;
    else process.env.PEFT_TS_THREADS = saved;
  });

  it('starts on request with the OpenBLAS thread count of PEFT_TS_THREADS', async () => {
    process.env.PEFT_TS_THREADS = '1';
    const info = await initBackend('native');
    expect(info).toEqual({ name: 'native', detail: '@peft-ts/backend-native (OpenBLAS, 1 thread)' });
    expect(tf.getBackend()).toBe('native');
  });

  it('is what auto picks over wasm when no faster backend is found', async () => {
    const info = await initBackend('auto');
    expect(info.name).not.toBe('wasm');
    if (info.name === 'native') expect(info.detail).toMatch(/^@peft-ts\/backend-native \(OpenBLAS, \d+ threads?\); skipped tensorflow/);
  });

  it('refuses a bad PEFT_TS_THREADS with a BackendError naming it', async () => {
    process.env.PEFT_TS_THREADS = '0';
    const attempt = initBackend('native');
    await expect(attempt).rejects.toBeInstanceOf(BackendError);
    await expect(attempt).rejects.toThrow("PEFT_TS_THREADS must be a positive integer, got '0'");
  });
});
