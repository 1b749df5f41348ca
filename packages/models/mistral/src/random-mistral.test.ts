import * as tf from '@tensorflow/tfjs-core';
import { HalfEmbedding, HalfLinear, Linear, manualSeed, type LinearLike } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import type { LinearWeightContext } from '@peft-ts/model-common';
import { MistralForCausalLM } from './mistral-model.js';
import { randomMistral } from './random-mistral.js';

const tinyConfig = {
  vocab_size: 48,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
};

describeWithBackends('randomMistral', () => {
  it('initialises exactly as the constructor does for the same seed', async () => {
    manualSeed(5);
    const expected = new MistralForCausalLM(tinyConfig);
    manualSeed(5);
    const built = randomMistral(tinyConfig);
    const expectedParameters = new Map(expected.namedParameters());
    const builtParameters = built.namedParameters();
    expect(builtParameters.map(([name]) => name)).toEqual([...expectedParameters.keys()]);
    for (const [name, parameter] of builtParameters) {
      expect(maxAbsDifference(await parameter.value.data(), await expectedParameters.get(name)!.value.data()), name).toBe(0);
    }
    expected.dispose();
    built.dispose();
  });

  it('hands each linear weight to createLinear in turn, installs what it returns and disposes the float weight', () => {
    const seen: string[] = [];
    const tensorsBefore = tf.memory().numTensors;
    let previous: tf.Tensor | null = null;
    const model = randomMistral(tinyConfig, {
      createLinear: ({ key, weight, inFeatures, outFeatures }: LinearWeightContext): LinearLike | undefined => {
        seen.push(key);
        expect(weight.shape).toEqual([outFeatures, inFeatures]);
        // One float linear at a time: the previous weight is gone before the next is created.
        expect(previous?.isDisposed ?? true).toBe(true);
        previous = weight;
        if (key === 'lm_head') return undefined;
        const layer = new Linear(inFeatures, outFeatures, { bias: false, meta: true });
        const doubled = tf.mul(weight, 2);
        layer.parameter('weight').set(doubled, 'weight');
        doubled.dispose();
        return layer;
      },
    });
    expect(seen).toHaveLength(2 * 7 + 1);
    expect(seen[0]).toBe('model.layers.0.self_attn.q_proj');
    expect(seen.at(-1)).toBe('lm_head');
    expect(model.getSubmodule('model.layers.1.mlp.down_proj')).toBeInstanceOf(Linear);
    expect(previous!.isDisposed).toBe(true);
    expect(model.namedParameters().every(([, parameter]) => !parameter.isMeta)).toBe(true);
    model.dispose();
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('keeps the embedding and the linears left float in half storage for a half torch_dtype', async () => {
    manualSeed(2);
    const float = randomMistral({ ...tinyConfig, torch_dtype: 'bfloat16' }, { torchDtype: 'float32' });
    manualSeed(2);
    const half = randomMistral({ ...tinyConfig, torch_dtype: 'bfloat16' }, { createLinear: () => undefined });
    expect(half.getSubmodule('model.embed_tokens')).toBeInstanceOf(HalfEmbedding);
    expect(half.getSubmodule('lm_head')).toBeInstanceOf(HalfLinear);
    expect(half.getSubmodule('model.layers.0.self_attn.q_proj')).toBeInstanceOf(HalfLinear);
    expect(float.getSubmodule('lm_head')).toBeInstanceOf(Linear);
    const inputIds = tf.tensor2d([[1, 5, 9, 47]], [1, 4], 'int32');
    const [halfLogits, floatLogits] = [half, float].map((model) => model.eval().forward({ inputIds }).logits);
    // bfloat16 keeps 8 significant bits: the logits move by a small fraction of their size.
    const scale = Math.max(...(await floatLogits.abs().data()));
    expect(maxAbsDifference(await halfLogits.data(), await floatLogits.data()) / scale).toBeLessThan(0.05);
    tf.dispose([inputIds, halfLogits, floatLogits]);
    half.dispose();
    float.dispose();
  });
});
