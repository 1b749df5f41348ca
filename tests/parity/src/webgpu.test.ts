import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile } from '@peft-ts/core';
import { initBackend, type BackendName } from '@peft-ts/core/backend';
import { fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { createBitsAndBytesConfig, createLoraConfig, type BitsAndBytesConfigInput } from '@peft-ts/config';
import { quantizedLinearFactory } from '@peft-ts/quant';
import { doraMethod } from '@peft-ts/dora';
import { LoraModel, loadLoraModel } from '@peft-ts/lora';
import { loadMistral } from '@peft-ts/model-mistral';
import { describe, expect, it } from 'vitest';

// WebGPU runs here on a software adapter (llvmpipe through OpenGL ES); where no adapter exists at all
// the suite is reported as skipped rather than passed.
const webgpuAvailable = await initBackend('webgpu').then(
  () => true,
  () => false,
);

async function fixtureLogits(backend: BackendName, adapter?: string, quantization?: BitsAndBytesConfigInput): Promise<Float32Array> {
  await initBackend(backend);
  const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  const createLinear = quantization ? quantizedLinearFactory(createBitsAndBytesConfig(quantization)) : undefined;
  const model = await loadMistral(fixturePath('mistral', 'base_model'), { createLinear });
  if (adapter) await loadLoraModel(model, fixturePath('mistral', adapter, 'adapter'), { method: doraMethod });
  const logits = tf.tidy(() => model.forward({ inputIds }).logits);
  const values = (await logits.data()) as Float32Array;
  tf.dispose([logits, inputIds]);
  model.dispose();
  return values;
}

/** Losses of a few Adam-free SGD steps of LoRA on the fixture Mistral, on the given backend. */
async function trainingLosses(backend: BackendName, useDora: boolean): Promise<number[]> {
  await initBackend(backend);
  const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  const model = await loadMistral(fixturePath('mistral', 'base_model'));
  manualSeed(21);
  const config = createLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], initLoraWeights: false, useDora });
  const lora = new LoraModel(model, config, { method: doraMethod });
  const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
  const losses: number[] = [];
  for (let step = 0; step < 4; step++) {
    const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, variables);
    losses.push((await value.data())[0]);
    tf.tidy(() => variables.forEach((variable) => variable.assign(tf.sub(variable, tf.mul(grads[variable.name], 0.05)))));
    tf.dispose([value, ...Object.values(grads)]);
  }
  model.dispose();
  return losses;
}

describe.skipIf(!webgpuAvailable)('webgpu (small sizes) matches cpu', () => {
  it.each([undefined, 'lora', 'dora', 'layer_replication'])('fixture logits with adapter %s', async (adapter) => {
    const reference = await fixtureLogits('cpu', adapter);
    const webgpu = await fixtureLogits('webgpu', adapter);
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  // A low LLM.int8 threshold makes outlier columns appear, which webgpu handles with a mask on the device.
  it.each<BitsAndBytesConfigInput>([
    { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true },
    { loadIn8bit: true, llmInt8Threshold: 0.5 },
  ])('quantized fixture logits (%j)', async (quantization) => {
    const reference = await fixtureLogits('cpu', 'lora', quantization);
    const webgpu = await fixtureLogits('webgpu', 'lora', quantization);
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  it.each([false, true])('a few LoRA training steps give the cpu losses (DoRA: %s)', async (useDora) => {
    const reference = await trainingLosses('cpu', useDora);
    const webgpu = await trainingLosses('webgpu', useDora);
    expect(reference[3]).toBeLessThan(reference[0]);
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  it('refuses a tensor over the storage-buffer limit instead of reading back zeros', async () => {
    const info = await initBackend('webgpu');
    const limit = Number(/storage buffers up to (\d+) MiB/.exec(info.detail)![1]) * 2 ** 20;
    expect(() => tf.zeros([limit / 4 + 1])).toThrow(/storage-buffer limit .*use a smaller batch/);
    expect(() => tf.tensor(new Float32Array(limit / 4 + 1))).toThrow(/float32 \[\d+\] tensor needs/);
    const fits = tf.ones([1024]);
    expect((await tf.sum(fits).data())[0]).toBe(1024);
  });
});
