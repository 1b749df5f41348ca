import * as tf from '@tensorflow/tfjs-core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { baseModelDirectory, fixtureInputs } from './__fixtures__/mistral-fixtures.js';
import { GenerationError, KeyValueCache, generate } from '@peft-ts/model-common';
import { loadMistral } from './load-mistral.js';
import type { MistralForCausalLM } from './mistral-model.js';

describeWithBackends('generation (fixture model, sliding window 16)', (backend) => {
  let model: MistralForCausalLM;
  let promptRows: number[][];

  beforeAll(async () => {
    model = (await loadMistral(baseModelDirectory)).eval();
    const { inputIds, paddedMask } = await fixtureInputs();
    const ids = inputIds.arraySync();
    promptRows = [ids[0].slice(0, 8), ids[1].slice(0, 5)];
    tf.dispose([inputIds, paddedMask]);
  });
  afterAll(() => model.dispose());

  /** Full-sequence forward of `tokens`, last position's logits. */
  function logitsWithoutCache(tokens: number[]): Float32Array {
    return tf.tidy(() => {
      const { logits } = model.forward({ inputIds: tf.tensor2d([tokens], [1, tokens.length], 'int32') });
      return tf.slice(logits, [0, tokens.length - 1, 0], [1, 1, -1]).dataSync() as Float32Array;
    });
  }

  function argMax(values: Float32Array): number {
    return values.reduce((best, value, index) => (value > values[best] ? index : best), 0);
  }

  it('decodes with the cache exactly as step-by-step argmax without it, 40 tokens past the window', async () => {
    const prompt = promptRows[0];
    const newTokens = 16 + 1 + 40 - prompt.length + 8;
    // Reference: re-run the whole sequence every step.
    const reference = [...prompt];
    const referenceLogits: Float32Array[] = [];
    for (let step = 0; step < newTokens; step++) {
      referenceLogits.push(logitsWithoutCache(reference));
      reference.push(argMax(referenceLogits[step]));
    }

    // Incremental: one token per step through the cache, which never holds more than W keys.
    const cache = new KeyValueCache(model.config.sliding_window);
    const sequence = [...prompt];
    let worst = 0;
    let fed = sequence;
    for (let step = 0; step < newTokens; step++) {
      const last = tf.tidy(() => {
        const { logits } = model.forward({ inputIds: tf.tensor2d([fed], [1, fed.length], 'int32'), cache });
        return tf.slice(logits, [0, fed.length - 1, 0], [1, 1, -1]).dataSync() as Float32Array;
      });
      worst = Math.max(worst, maxAbsDifference(last, referenceLogits[step]));
      expect(cache.get(4)!.keys.shape[2]).toBeLessThanOrEqual(16);
      sequence.push(argMax(last));
      fed = [sequence.at(-1)!];
    }
    expect(cache.pastLength).toBe(sequence.length - 1);
    expect(cache.keyStart).toBe(sequence.length - 1 - 16);
    cache.dispose();
    console.info(`[${backend}] cached vs uncached step logits max-abs over ${newTokens} steps: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    expect(sequence).toEqual(reference);

    const result = await generate(model, [prompt], { maxNewTokens: newTokens, stopTokenIds: [] });
    expect(result.tokens[0]).toEqual(reference.slice(prompt.length));
    expect(result.finishReasons).toEqual(['length']);
    const uncached = await generate(model, [prompt], { maxNewTokens: 12, stopTokenIds: [], useCache: false });
    expect(uncached.tokens[0]).toEqual(reference.slice(prompt.length, prompt.length + 12));
  });

  it('batches left-padded prompts of different lengths like separate runs', async () => {
    const options = { maxNewTokens: 30, stopTokenIds: [] };
    const together = await generate(model, promptRows, options);
    const alone = await Promise.all(promptRows.map(async (prompt) => (await generate(model, [prompt], options)).tokens[0]));
    expect(together.tokens).toEqual(alone);
  });

  it('stops at a stop token and keeps it', async () => {
    const { tokens } = await generate(model, [promptRows[0]], { maxNewTokens: 10, stopTokenIds: [] });
    const stop = tokens[0][3];
    const firstIndex = tokens[0].indexOf(stop);
    const stopped = await generate(model, [promptRows[0], promptRows[1]], { maxNewTokens: 10, stopTokenIds: [stop] });
    expect(stopped.tokens[0]).toEqual(tokens[0].slice(0, firstIndex + 1));
    expect(stopped.finishReasons[0]).toBe('stop');
  });

  it('samples reproducibly from a seed; top-k 1 is greedy', async () => {
    const options = { maxNewTokens: 20, stopTokenIds: [], doSample: true, temperature: 1.5, topK: 20, topP: 0.95 };
    const first = await generate(model, promptRows, { ...options, seed: 7 });
    const second = await generate(model, promptRows, { ...options, seed: 7 });
    const other = await generate(model, promptRows, { ...options, seed: 8 });
    expect(second.tokens).toEqual(first.tokens);
    expect(other.tokens).not.toEqual(first.tokens);
    const greedy = await generate(model, promptRows, { maxNewTokens: 10, stopTokenIds: [] });
    const topOne = await generate(model, promptRows, { maxNewTokens: 10, stopTokenIds: [], doSample: true, topK: 1, seed: 1 });
    expect(topOne.tokens).toEqual(greedy.tokens);
  });

  it('rejects bad prompts and settings, all listed', async () => {
    await expect(generate(model, [[1, 500], []], { maxNewTokens: -1, topP: 0, temperature: 0 })).rejects.toThrow(
      'generate: prompts[0]: token 500 is not an id in [0, 128); prompts[1]: expected at least one token; ' +
        'maxNewTokens: expected a non-negative integer, got -1; temperature: expected a positive number, got 0; topP: expected a number in (0, 1], got 0',
    );
  });

  it('refuses to run past max_position_embeddings with a GenerationError', async () => {
    const limit = model.config.max_position_embeddings;
    const long = Array.from({ length: limit - 3 }, (_, index) => index % 100);
    const refusal = generate(model, [promptRows[0], long], { maxNewTokens: 4 });
    await expect(refusal).rejects.toBeInstanceOf(GenerationError);
    await expect(refusal).rejects.toThrow(
      `generate: prompts[1]: ${limit - 3} tokens + maxNewTokens 4 = ${limit + 1} positions, past max_position_embeddings ${limit}`,
    );
    expect((await generate(model, [long], { maxNewTokens: 3 })).tokens[0]).toHaveLength(3);
  });
});
