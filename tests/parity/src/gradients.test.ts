import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile } from '@peft-ts/core';
import { initBackend, type BackendName } from '@peft-ts/core/backend';
import { fixturePath, maxAbsDifference, testBackends } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { LoraModel } from '@peft-ts/lora';
import { loadMistral } from '@peft-ts/model-mistral';
import { describe, expect, it } from 'vitest';

/**
 * Loss and the gradients of every adapter parameter on the fixture Mistral (embedding LoRA,
 * projections, DoRA magnitudes, gradient checkpointing) computed on one backend.
 */
async function adapterGradients(backend: BackendName, options: { useDora: boolean; checkpointing: boolean }) {
  await initBackend(backend);
  const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  const labels = tf.tensor2d(
    Array.from(inputIds.dataSync(), (value, index) => (index % 24 < 3 ? -100 : value)),
    inputIds.shape,
    'int32',
  );
  const model = await loadMistral(fixturePath('mistral', 'base_model'));
  model.gradientCheckpointing = options.checkpointing;
  manualSeed(5);
  const targets = options.useDora ? ['q_proj', 'v_proj', 'down_proj'] : ['embed_tokens', 'q_proj', 'v_proj', 'down_proj', 'lm_head'];
  const lora = new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: targets, initLoraWeights: false, useDora: options.useDora }), {
    method: doraMethod,
  });
  const trainable = lora.trainableParameters();
  const { value, grads } = tf.variableGrads(
    () => model.forward({ inputIds, labels }).loss!,
    trainable.map(([, parameter]) => parameter.value),
  );
  const gradients = new Map(trainable.map(([name, parameter]) => [name, Array.from(grads[parameter.value.name].dataSync())]));
  const loss = value.dataSync()[0];
  model.dispose();
  return { loss, gradients };
}

// The reference is cpu; every other backend under test must give the same loss and gradients.
const others = testBackends().filter((backend) => backend !== 'cpu');

describe.each(others)('adapter gradients on %s equal cpu', (backend) => {
  it.each([
    { useDora: false, checkpointing: false },
    { useDora: true, checkpointing: false },
    { useDora: false, checkpointing: true },
  ])('%j', async (options) => {
    const reference = await adapterGradients('cpu', options);
    const actual = await adapterGradients(backend, options);
    expect(Math.abs(actual.loss - reference.loss)).toBeLessThan(1e-5);
    for (const [name, values] of reference.gradients) {
      const scale = Math.max(1e-3, ...values.map(Math.abs));
      expect([name, maxAbsDifference(actual.gradients.get(name)!, values) / scale < 1e-3]).toEqual([name, true]);
    }
  });
});
