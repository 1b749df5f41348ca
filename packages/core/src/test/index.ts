import * as tf from '@tensorflow/tfjs-core';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { initBackend, nativeBackendAvailable, type BackendName } from '../backend/index.js';
import { PeftError } from '../errors.js';

const defaultBackends: BackendName[] = ['cpu', 'wasm', ...((await nativeBackendAvailable()) ? (['native'] as const) : [])];

/**
 * The backends numeric suites run on: cpu (exact reference), wasm, and native where its addon is
 * built, by default, or the comma-separated list in PEFT_TS_BACKEND (e.g. `tensorflow`; the suites read back synchronously, which
 * WebGPU cannot do under Node).
 */
export function testBackends(): BackendName[] {
  const requested = process.env.PEFT_TS_BACKEND;
  return requested ? (requested.split(',').map((name) => name.trim()) as BackendName[]) : [...defaultBackends];
}

/** Runs the same suite once per backend (tfjs' describeWithFlags idea), switching in beforeAll. */
export function describeWithBackends(name: string, body: (backend: BackendName) => void, backends = testBackends()): void {
  for (const backend of backends) {
    describe(`${name} [${backend}]`, () => {
      let before = 0;
      beforeAll(async () => {
        await initBackend(backend);
        before = tf.memory().numTensors;
      });
      afterAll(() => {
        // Suites may keep fixtures alive in closures; the count only guards against runaway leaks.
        if (tf.memory().numTensors - before > 50_000) throw new Error(`${name}: tensor leak on ${backend}`);
      });
      body(backend);
    });
  }
}

/**
 * Absolute path of a file under the PEFT 0.10 fixture folder that PEFT_TS_FIXTURES names (the repository's
 * vitest config points it at `fixtures/peft-0.10/`; published builds carry no fixtures).
 */
export function fixturePath(...parts: string[]): string {
  const root = process.env.PEFT_TS_FIXTURES;
  if (!root) {
    throw new PeftError('fixturePath: PEFT_TS_FIXTURES is not set; expected the folder holding the PEFT 0.10 fixtures (fixtures/peft-0.10/ in the peft-ts repository)');
  }
  return resolve(root, ...parts);
}

/** Largest |a − b| over two tensors or arrays of the same size. */
export function maxAbsDifference(actual: tf.Tensor | ArrayLike<number>, expected: tf.Tensor | ArrayLike<number>): number {
  const a = actual instanceof tf.Tensor ? actual.dataSync() : actual;
  const b = expected instanceof tf.Tensor ? expected.dataSync() : expected;
  if (a.length !== b.length) throw new Error(`size mismatch: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let index = 0; index < a.length; index++) {
    const difference = Math.abs(a[index] - b[index]);
    if (!(difference <= worst)) worst = Number.isNaN(difference) ? Infinity : difference;
  }
  return worst;
}

export { buildCorpus as malformedSafetensorsCorpus, type MalformedCase as MalformedSafetensorsCase } from './malformed-safetensors-corpus.js';
export { describeAdapterConformance, type AdapterConformanceOptions, type AdapterConformanceSubject } from './adapter-conformance.js';
export { importAsSecondCopy } from './second-copy.js';
