import * as tf from '@tensorflow/tfjs-core';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile, int64ToInt32Array } from '@peft-ts/core/safetensors';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { generate } from '@peft-ts/model-common';
import { expect, it } from 'vitest';
import { loadLlama } from './load-llama.js';

// Outputs of transformers 4.39.3's own LlamaForCausalLM on tiny random checkpoints (fixtures/transformers-4.39-llama/
// README.md says how they were made).
const fixtures = fileURLToPath(new URL('../../../../fixtures/transformers-4.39-llama/', import.meta.url));
const TOLERANCE = 1e-4;

type Tensors = Map<string, { shape: readonly number[]; data: ArrayLike<number | bigint> }>;

async function outputs(testCase: string): Promise<Tensors> {
  const file = await SafetensorsFile.open(`${fixtures}${testCase}/outputs.safetensors`);
  try {
    const tensors: Tensors = new Map();
    for (const name of file.tensorNames) tensors.set(name, await file.readTensor(name));
    return tensors;
  } finally {
    await file.close();
  }
}

const ids = (tensors: Tensors, name: string) => {
  const { shape, data } = tensors.get(name)!;
  return tf.tensor2d(int64ToInt32Array(data as BigInt64Array), [shape[0], shape[1]], 'int32');
};

/** The logits of the positions whose query is not padding (transformers' padded rows are a uniform softmax). */
function realPositions(logits: ArrayLike<number>, mask: Int32Array, vocabulary: number): number[] {
  return Array.from(mask).flatMap((keep, position) => (keep ? Array.from(logits).slice(position * vocabulary, (position + 1) * vocabulary) : []));
}

describeWithBackends('LlamaForCausalLM against transformers 4.39.3', () => {
  for (const testCase of ['base', 'attention_bias', 'rope_linear', 'tied', 'rope_dynamic']) {
    it(`${testCase}: logits, left-padded logits and greedy tokens`, async () => {
      const expected = await outputs(testCase);
      const facts = JSON.parse(await readFile(`${fixtures}${testCase}/facts.json`, 'utf8'));
      const model = (await loadLlama(`${fixtures}${testCase}/model`)).eval();
      const [inputIds, attentionMask, positionIds] = [ids(expected, 'input_ids'), ids(expected, 'attention_mask'), ids(expected, 'position_ids')];
      try {
        const logits = tf.tidy(() => model.forward({ inputIds }).logits);
        expect(maxAbsDifference(logits, expected.get('logits')!.data as Float32Array)).toBeLessThan(TOLERANCE);
        const padded = tf.tidy(() => model.forward({ inputIds, attentionMask, positionIds }).logits);
        const vocabulary = model.config.vocab_size;
        const length = inputIds.shape[1];
        const rowSize = length * vocabulary;
        const mask = attentionMask.dataSync() as Int32Array;
        for (const row of [0, 1]) {
          const rowMask = mask.slice(row * length, (row + 1) * length);
          const actual = realPositions((padded.dataSync() as Float32Array).subarray(row * rowSize, (row + 1) * rowSize), rowMask, vocabulary);
          const reference = realPositions((expected.get('logits_padded')!.data as Float32Array).subarray(row * rowSize, (row + 1) * rowSize), rowMask, vocabulary);
          expect(maxAbsDifference(actual, reference)).toBeLessThan(TOLERANCE);
        }
        const prompt = Array.from(inputIds.dataSync()).slice(0, length);
        const { tokens } = await generate(model, [prompt], { maxNewTokens: facts.generated_greedy_row0.length });
        expect(tokens[0]).toEqual(facts.generated_greedy_row0);
        tf.dispose([logits, padded]);
      } finally {
        tf.dispose([inputIds, attentionMask, positionIds]);
        model.dispose();
      }
    });
  }

  it('rope_dynamic: a short input on a fresh model is unscaled; after a long one transformers 4.39 keeps the scaled frequencies, peft-ts does not', async () => {
    const expected = await outputs('rope_dynamic');
    const model = (await loadLlama(`${fixtures}rope_dynamic/model`)).eval();
    const short = ids(expected, 'short_input_ids');
    try {
      const logits = tf.tidy(() => model.forward({ inputIds: short }).logits);
      expect(maxAbsDifference(logits, expected.get('short_logits_fresh')!.data as Float32Array)).toBeLessThan(TOLERANCE);
      // The quirk is real in the reference: the two reference outputs differ far beyond the tolerance.
      expect(maxAbsDifference(expected.get('short_logits_after_long')!.data as Float32Array, expected.get('short_logits_fresh')!.data as Float32Array)).toBeGreaterThan(1e-2);
      logits.dispose();
    } finally {
      short.dispose();
      model.dispose();
    }
  });
});
