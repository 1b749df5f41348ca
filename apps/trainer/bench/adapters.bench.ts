// LoRA / DoRA cost on the small config (vocab 8192, hidden 512, 8 layers, batch 4 × 256) on wasm:
// forward and training-step times, each as a ratio to its baseline measured in this same process.
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { createLoraConfig } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { LoraModel } from '@peft-ts/lora';
import { MistralForCausalLM } from '@peft-ts/model-mistral';

type BenchResult = { name: string; value: number; unit: string; baseline?: number; ratio?: number; note?: string };

export const smallConfig = {
  vocab_size: 8192,
  hidden_size: 512,
  intermediate_size: 1536,
  num_hidden_layers: 8,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  max_position_embeddings: 1024,
};
const batch = 4;
const sequence = 256;
const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Median wall time of `repeats` runs after one warm-up (the first run compiles kernels). */
async function medianSeconds(body: () => tf.Tensor | tf.Tensor[], repeats: number): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run <= repeats; run++) {
    const start = performance.now();
    const result = body();
    await Promise.all((Array.isArray(result) ? result : [result]).map((tensor) => tensor.data()));
    tf.dispose(result);
    if (run > 0) times.push((performance.now() - start) / 1000);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

function buildModel(variant: 'base' | 'lora' | 'dora'): { model: MistralForCausalLM; lora?: LoraModel } {
  manualSeed(1);
  const model = new MistralForCausalLM(smallConfig);
  if (variant === 'base') return { model };
  const config = createLoraConfig({ r: 8, loraAlpha: 16, targetModules: projections, useDora: variant === 'dora' });
  return { model, lora: new LoraModel(model, config, { method: doraMethod }) };
}

/** Seconds for one training step: loss, gradients of the trainable parameters, plain SGD update. */
function trainingStep(model: MistralForCausalLM, lora: LoraModel, inputIds: tf.Tensor2D): () => tf.Tensor {
  const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
  return () => {
    const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, variables);
    tf.tidy(() => variables.forEach((variable) => variable.assign(tf.sub(variable, tf.mul(grads[variable.name], 1e-4)))));
    tf.dispose(grads);
    return value;
  };
}

export async function runAdaptersBench(): Promise<BenchResult[]> {
  await initBackend('wasm');
  const inputIds = tf.randomUniform([batch, sequence], 0, smallConfig.vocab_size, 'int32', 3) as tf.Tensor2D;
  const forward = (model: MistralForCausalLM) => () => tf.tidy(() => model.forward({ inputIds }).logits);
  const results: BenchResult[] = [];
  const seconds: Record<string, number> = {};
  for (const variant of ['base', 'lora', 'dora'] as const) {
    const { model, lora } = buildModel(variant);
    model.eval();
    seconds[`${variant}.forward`] = await medianSeconds(forward(model), 3);
    if (lora) {
      model.train();
      seconds[`${variant}.step`] = await medianSeconds(trainingStep(model, lora, inputIds), 2);
    }
    model.dispose();
  }
  const tokens = batch * sequence;
  results.push(
    { name: 'base.forward', value: seconds['base.forward'], unit: 's', note: `${(tokens / seconds['base.forward']).toFixed(0)} tokens/s` },
    { name: 'lora.forward', value: seconds['lora.forward'], unit: 's', baseline: seconds['base.forward'], ratio: seconds['lora.forward'] / seconds['base.forward'], note: 'unmerged r=8, 7 targets; goal ≤ 1.10' },
    { name: 'dora.forward', value: seconds['dora.forward'], unit: 's', baseline: seconds['lora.forward'], ratio: seconds['dora.forward'] / seconds['lora.forward'], note: 'eval mode; goal ≤ 1.25 of LoRA' },
    { name: 'lora.train_step', value: seconds['lora.step'], unit: 's', baseline: seconds['base.forward'], ratio: seconds['lora.step'] / seconds['base.forward'], note: `${(tokens / seconds['lora.step']).toFixed(0)} tokens/s; ratio to base forward` },
    { name: 'dora.train_step', value: seconds['dora.step'], unit: 's', baseline: seconds['lora.step'], ratio: seconds['dora.step'] / seconds['lora.step'], note: 'goal ≤ 1.25 of a LoRA step' },
  );
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const result of await runAdaptersBench()) console.log(JSON.stringify(result));
}
