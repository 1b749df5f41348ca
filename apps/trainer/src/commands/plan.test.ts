import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planRun } from './plan.js';

/** A one-layer Mistral whose every linear weight has an odd element count: hidden 5 (one head), intermediate 3, vocab 7. */
const oddConfig = {
  model_type: 'mistral',
  hidden_size: 5,
  intermediate_size: 3,
  num_attention_heads: 1,
  num_key_value_heads: 1,
  num_hidden_layers: 1,
  vocab_size: 7,
  torch_dtype: 'float32',
};

describe('planRun parameter counts', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-plan-'));
    await writeFile(join(scratch, 'config.json'), JSON.stringify(oddConfig));
    await writeFile(join(scratch, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 1, lora_alpha: 1, target_modules: ['q_proj'] }));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  // q, k, v, o [5, 5] = 25 each; gate, up [3, 5] and down [5, 3] = 15 each; embed_tokens and lm_head [7, 5];
  // two layer norms and the final norm [5].
  const floatParams = 4 * 25 + 3 * 15 + 2 * 35 + 3 * 5;

  it('counts quantized weights as PEFT 0.10 does: a 4-bit one as ((n + 1) // 2) · 2, an 8-bit one as n', async () => {
    expect(floatParams).toBe(230);
    const float = await planRun({ model: scratch });
    expect([float.baseParams, float.totalParams, float.torchNumel]).toEqual([floatParams, floatParams, floatParams]);
    const fourBit = await planRun({ model: scratch, quant: '4bit' });
    // lm_head stays float; the 7 odd decoder weights count one more each, while torch's numel is their byte count.
    expect(fourBit.totalParams).toBe(4 * (13 * 2) + 3 * (8 * 2) + 2 * 35 + 3 * 5);
    expect(fourBit.torchNumel).toBe(4 * 13 + 3 * 8 + 2 * 35 + 3 * 5);
    expect(fourBit.baseParams).toBe(floatParams);
    const eightBit = await planRun({ model: scratch, quant: '8bit' });
    expect([eightBit.totalParams, eightBit.torchNumel]).toEqual([floatParams, floatParams]);
  });

  it('with an adapter, trainable params are the adapter\'s; gradients and AdamW state take their float32 bytes', async () => {
    const plan = await planRun({ model: scratch, adapterConfig: join(scratch, 'adapter_config.json'), quant: '4bit' });
    // LoRA r = 1 on q_proj: A [1, 5] and B [5, 1].
    const adapter = 1 * (5 + 5);
    expect([plan.trainableParams, plan.totalParams]).toEqual([adapter, 4 * 26 + 3 * 16 + 2 * 35 + 3 * 5 + adapter]);
    expect([plan.memoryBytes.adapters, plan.memoryBytes.gradients, plan.memoryBytes.optimizerState]).toEqual([4 * adapter, 4 * adapter, 8 * adapter]);
  });
});
