import { manualSeed } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { LlamaForCausalLM } from './llama-model.js';
import { tinyLlamaConfig } from './llama-presets.js';
import { randomLlama } from './random-llama.js';

describeWithBackends('randomLlama', () => {
  it('initialises exactly as the constructor does for the same seed, biases included', async () => {
    const config = { ...tinyLlamaConfig, attention_bias: true };
    manualSeed(5);
    const expected = new LlamaForCausalLM(config);
    manualSeed(5);
    const built = randomLlama(config);
    const expectedParameters = new Map(expected.namedParameters());
    const builtParameters = built.namedParameters();
    expect(builtParameters.map(([name]) => name)).toEqual([...expectedParameters.keys()]);
    for (const [name, parameter] of builtParameters) {
      expect(maxAbsDifference(await parameter.value.data(), await expectedParameters.get(name)!.value.data()), name).toBe(0);
    }
    expected.dispose();
    built.dispose();
  });
});
