// What a user of `npm install @peft-ts/lora @peft-ts/model-mistral` writes: plain Node ESM, no TypeScript, no
// bundler. Loads the fixture Mistral with its LoRA adapter and prints the logits and a backward pass as JSON.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readTensorFile } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { loadLoraModel } from '@peft-ts/lora';
import { loadMistral } from '@peft-ts/model-mistral';

const [fixtures] = process.argv.slice(2);
await initBackend('cpu');
const model = await loadMistral(join(fixtures, 'mistral', 'base_model'));
// Trainable, so that the adapter weights are trainable variables (the fixture's dropout is 0: same logits).
const lora = await loadLoraModel(model, join(fixtures, 'mistral', 'lora', 'adapter'), { isTrainable: true });
const inputIds = (await readTensorFile(join(fixtures, 'mistral', 'inputs.safetensors'))).get('input_ids');
const logits = model.forward({ inputIds }).logits;
// Gradients come from tfjs-core's registration that initBackend performs; without it this throws.
const { grads } = tf.variableGrads(() => tf.mean(lora.model.forward({ inputIds }).logits));
const gradients = Object.values(grads).map((gradient) => Array.from(gradient.dataSync()));
console.log(
  JSON.stringify({
    shape: logits.shape,
    logits: Array.from(logits.dataSync()),
    gradientCount: gradients.length,
    gradientsFinite: gradients.every((values) => values.every(Number.isFinite)),
    gradientsNonZero: gradients.filter((values) => values.some((value) => value !== 0)).length,
    // Chained tensor methods, which tfjs-core's Node entry does not add either.
    chainedMax: tf.tensor1d([3, -5, 2]).abs().max().dataSync()[0],
  }),
);
