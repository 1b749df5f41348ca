// Where a training step's time goes: one LoRA (or DoRA / QLoRA) step of the adapters bench's small config under
// tf.profile, kernel times summed by kernel name, largest first. Not a bench (no ratios): a guide for kernel work.
// PEFT_TS_BENCH_BACKEND picks the backend (default native), PEFT_TS_PROFILE_VARIANT the adapter (lora|dora|qlora).
import * as tf from '@tensorflow/tfjs-core';
import { Linear, manualSeed } from '@peft-ts/core';
import { initBackend, type BackendRequest } from '@peft-ts/core/backend';
import { createLoraConfig } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { LoraModel } from '@peft-ts/lora';
import { MistralForCausalLM } from '@peft-ts/model-mistral';
import { smallBenchmarkConfig } from '@peft-ts/model-mistral/internal';
import { Linear4bit, prepareModelForKbitTraining } from '@peft-ts/quant';

const variant = (process.env.PEFT_TS_PROFILE_VARIANT ?? 'lora') as 'lora' | 'dora' | 'qlora';
const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
await initBackend((process.env.PEFT_TS_BENCH_BACKEND as BackendRequest | undefined) ?? 'native');
manualSeed(1);
const model = new MistralForCausalLM(smallBenchmarkConfig);
if (variant === 'qlora') {
  for (const [path, module] of model.namedModules()) {
    if (!(module instanceof Linear) || !projections.includes(path.split('.').at(-1)!)) continue;
    model.setSubmodule(path, Linear4bit.fromWeight(module.weight.value, { quantType: 'nf4', compressStatistics: true }));
    module.dispose();
  }
  prepareModelForKbitTraining(model, { useGradientCheckpointing: false });
}
const lora = new LoraModel(model, createLoraConfig({ r: 8, loraAlpha: 16, targetModules: projections, useDora: variant === 'dora' }), { method: doraMethod });
model.train();
const inputIds = tf.randomUniform([4, 256], 0, smallBenchmarkConfig.vocab_size, 'int32', 3) as tf.Tensor2D;
const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
const step = () => {
  const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, variables);
  tf.dispose(grads);
  return value;
};
tf.dispose(step());
const start = performance.now();
const info = await tf.profile(() => step());
const wall = (performance.now() - start) / 1000;
const byKernel = new Map<string, { ms: number; calls: number }>();
const byShape = process.env.PEFT_TS_PROFILE_SHAPES === '1';
for (const kernel of info.kernels) {
  const key = byShape ? `${kernel.name} ${JSON.stringify(kernel.inputShapes)}` : kernel.name;
  const entry = byKernel.get(key) ?? { ms: 0, calls: 0 };
  entry.ms += (await kernel.kernelTimeMs) as number;
  entry.calls += 1;
  byKernel.set(key, entry);
}
const total = [...byKernel.values()].reduce((sum, { ms }) => sum + ms, 0);
console.log(`${variant} step on ${tf.getBackend()}: ${wall.toFixed(2)} s wall under the profiler, kernels ${(total / 1000).toFixed(2)} s`);
for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30)) {
  console.log(`${name.padEnd(byShape ? 60 : 28)} ${(ms / 1000).toFixed(3).padStart(7)} s ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${calls} calls`);
}
