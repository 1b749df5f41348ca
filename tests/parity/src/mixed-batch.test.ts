import * as tf from '@tensorflow/tfjs-core';
import { BASE_MODEL_ROW, readTensorFile } from '@peft-ts/core';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { loadAdapter, loadLoraModel, type LoraModel } from '@peft-ts/lora';
import { generate, loadMistral, type MistralForCausalLM } from '@peft-ts/model-mistral';
import { beforeAll, expect, it } from 'vitest';

const TOLERANCE = 1e-4;

/** PEFT's logits of one fixture case (`base` is the plain model). */
async function peftLogits(name: string): Promise<tf.Tensor> {
  return (await readTensorFile(fixturePath('mistral', name, 'outputs.safetensors'))).get('logits')!;
}

const row = (logits: tf.Tensor, index: number) => tf.slice(logits, index, 1);

/** The base model with the named fixture adapters loaded under their case names, in eval mode. */
async function withAdapters(names: readonly string[]): Promise<{ model: MistralForCausalLM; lora: LoraModel<MistralForCausalLM> }> {
  const model = await loadMistral(fixturePath('mistral', 'base_model'));
  const [first, ...rest] = names;
  const lora = await loadLoraModel(model, fixturePath('mistral', first, 'adapter'), { adapterName: first });
  for (const name of rest) await loadAdapter(lora, fixturePath('mistral', name, 'adapter'), { adapterName: name });
  return { model: model.eval(), lora };
}

describeWithBackends('Mistral mixed batches (adapterNames) match PEFT 0.10 outputs row by row', () => {
  let inputIds: tf.Tensor2D;
  beforeAll(async () => {
    inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  });

  it.each([
    [['lora', 'rslora'], ['lora', 'rslora']],
    [[BASE_MODEL_ROW, 'lora'], ['lora']],
    [['embedding', BASE_MODEL_ROW], ['embedding']],
    [['rslora', 'embedding'], ['rslora', 'embedding']],
  ])('rows %j: each row is PEFT\'s logits of that adapter (or of the base model)', async (rows, adapters) => {
    const { model } = await withAdapters(adapters);
    const logits = tf.tidy(() => model.forward({ inputIds, adapterNames: rows }).logits);
    for (const [index, name] of rows.entries()) {
      const expected = await peftLogits(name === BASE_MODEL_ROW ? 'base' : name);
      expect([name, maxAbsDifference(row(logits, index), row(expected, index)) < TOLERANCE]).toEqual([name, true]);
    }
  });

  it('generate: each prompt decodes with its own adapter, as it does alone with that adapter active', async () => {
    const { model, lora } = await withAdapters(['lora', 'rslora']);
    const ids = inputIds.arraySync();
    const prompts = [ids[0].slice(0, 6), ids[1].slice(0, 9), ids[0].slice(3, 7)];
    const adapterNames = ['rslora', BASE_MODEL_ROW, 'lora'];
    const together = await generate(model, prompts, { maxNewTokens: 6, adapterNames });
    for (const [index, name] of adapterNames.entries()) {
      const alone =
        name === BASE_MODEL_ROW
          ? await lora.withAdaptersDisabled(() => generate(model, [prompts[index]], { maxNewTokens: 6 }))
          : await lora.setAdapter(name).then(() => generate(model, [prompts[index]], { maxNewTokens: 6 }));
      expect([name, together.tokens[index]]).toEqual([name, alone.tokens[0]]);
    }
    // The adapters change what is generated, so each row really took its own.
    const base = await lora.withAdaptersDisabled(() => generate(model, prompts, { maxNewTokens: 6 }));
    expect(base.tokens[0]).not.toEqual(together.tokens[0]);
    expect(base.tokens[2]).not.toEqual(together.tokens[2]);
    model.train();
    await expect(generate(model, prompts, { maxNewTokens: 1, adapterNames })).rejects.toThrow(
      'Cannot pass `adapterNames` when the model is in training mode',
    );
    await expect(generate(model.eval(), prompts, { maxNewTokens: 1, adapterNames: ['lora'] })).rejects.toThrow(/Length of `adapterNames`/);
  });
});
