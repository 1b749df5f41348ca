import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile } from '@peft-ts/core';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { LoraModel } from '@peft-ts/lora';
import { loadMistral } from '@peft-ts/model-mistral';
import { beforeAll, expect, it } from 'vitest';

describeWithBackends('a LoRA/DoRA training step on Mistral', () => {
  let inputIds: tf.Tensor2D;
  beforeAll(async () => {
    inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  });

  // DoRA has no Embedding variant (PEFT 0.10 refuses it too), so its case trains the projections only.
  it.each([false, true])('changes only trainable parameters, embedding LoRA included unless DoRA (DoRA: %s)', async (useDora) => {
    manualSeed(11);
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    const lora = new LoraModel(
      model,
      createLoraConfig({
        r: 4,
        loraAlpha: 8,
        targetModules: [...(useDora ? [] : ['embed_tokens']), 'q_proj', 'v_proj', 'down_proj'],
        initLoraWeights: false,
        useDora,
      }),
      { method: doraMethod },
    );
    const trainable = lora.trainableParameters();
    expect(trainable.some(([name]) => name.includes(useDora ? 'lora_magnitude_vector' : 'lora_embedding_A'))).toBe(true);
    const before = new Map(model.namedParameters().map(([name, parameter]) => [name, parameter.value.dataSync().slice()]));
    const { value: loss, grads } = tf.variableGrads(
      () => model.forward({ inputIds, labels: inputIds }).loss!,
      trainable.map(([, parameter]) => parameter.value),
    );
    expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
    for (const [name, parameter] of trainable) {
      const gradient = grads[parameter.value.name];
      expect([name, maxAbsDifference(gradient, tf.zerosLike(gradient)) > 0]).toEqual([name, true]);
      parameter.value.assign(tf.sub(parameter.value, tf.mul(gradient, 0.1)));
    }
    const trainableNames = new Set(trainable.map(([name]) => name));
    for (const [name, parameter] of model.namedParameters()) {
      const changed = maxAbsDifference(parameter.value, before.get(name)!) > 0;
      expect([name, changed]).toEqual([name, trainableNames.has(name)]);
    }
  });
});
