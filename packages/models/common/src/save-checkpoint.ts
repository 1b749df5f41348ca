import * as tf from '@tensorflow/tfjs-core';
import { StateDictError, type HalfDtype, type Module, type WeightAccess } from '@peft-ts/core';
import { isHalfDtype, storesCheckpointTensors } from '@peft-ts/core/internal';
import { writeShardedCheckpoint, type SafetensorsTensor } from '@peft-ts/core/safetensors';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DecoderForCausalLM } from './causal-lm.js';

export type SaveCheckpointOptions = {
  /** Largest shard in bytes; beyond it the checkpoint is sharded with an index (default 5 GB, as transformers). */
  readonly maxShardBytes?: number;
  /**
   * dtype of the float tensors. Default: the config's `torch_dtype` when it is float16 or bfloat16 (a model loaded
   * from a half checkpoint is saved in it, rounding to nearest even), otherwise float32.
   */
  readonly torchDtype?: 'float32' | HalfDtype;
};

const SAFETENSORS_FLOAT_DTYPES = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as const;

/**
 * Writes `config.json` and `model.safetensors` (or shards plus index) in transformers' layout, in the checkpoint's
 * float dtype (see `torchDtype`). Linear and embedding weights are read through their weight access. Quantized
 * layers of a model whose config has a `quantization_config` (loaded pre-quantized) are written as bitsandbytes
 * serializes them, codes unchanged; otherwise they are saved dequantized. A layer still wrapped by an adapter is
 * refused (merge and unload first). With tied embeddings `lm_head.weight` is left out, as transformers does.
 */
export async function saveCausalLm(model: DecoderForCausalLM, directory: string, options: SaveCheckpointOptions = {}): Promise<string[]> {
  const { torch_dtype: configDtype, quantization_config: quantizationConfig } = model.decoderConfig;
  const torchDtype = options.torchDtype ?? (isHalfDtype(configDtype) ? configDtype : 'float32');
  const dtype = SAFETENSORS_FLOAT_DTYPES[torchDtype];
  const keepQuantized = quantizationConfig !== undefined;
  const architecture = model.definition.architecture;
  const layout = new DecoderForCausalLM(model.definition, model.config, { meta: true });
  const tensors = new Map<string, SafetensorsTensor>();
  const problems: string[] = [];
  for (const [name, parameter] of layout.namedParameters()) {
    const cut = name.lastIndexOf('.');
    const path = name.slice(0, cut);
    let module: Module;
    try {
      module = model.getSubmodule(path);
    } catch {
      problems.push(`${path}: no such module`);
      continue;
    }
    const parameterName = name.slice(cut + 1);
    let value: tf.Tensor;
    // An adapter wrapper has another kind: it is refused below, not read through the weight access of its base.
    const sameKind = module.kind === layout.getSubmodule(path).kind;
    const access = sameKind && parameterName === 'weight' ? (module as Partial<{ weightAccess: WeightAccess }>).weightAccess : undefined;
    if (access && keepQuantized && storesCheckpointTensors(module)) {
      for (const [suffix, tensor] of await module.checkpointTensors()) tensors.set(`${path}.${suffix}`, tensor);
      continue;
    }
    if (access) {
      value = access.getBaseWeight();
    } else if (sameKind && module.hasParameter(parameterName)) {
      value = module.parameter(parameterName).value.clone();
    } else {
      problems.push(`${path}: a '${module.kind}' module (merge and unload adapters before saving)`);
      continue;
    }
    try {
      if (value.shape.join() !== parameter.shape.join()) {
        problems.push(`${name}: expected [${parameter.shape.join(', ')}], got [${value.shape.join(', ')}]`);
        continue;
      }
      tensors.set(name, { dtype, shape: [...value.shape], data: (await value.data()) as Float32Array });
    } finally {
      value.dispose();
    }
  }
  if (problems.length) {
    throw new StateDictError(`save ${directory}: the model is not in plain ${architecture} layout: ${problems.join('; ')}`, [], [], problems);
  }
  await mkdir(directory, { recursive: true });
  const config = { ...model.config, architectures: [architecture], torch_dtype: torchDtype };
  await writeFile(join(directory, 'config.json'), `${JSON.stringify(sortKeys(config), null, 2)}\n`, 'utf8');
  const written = await writeShardedCheckpoint(directory, tensors, { maxShardBytes: options.maxShardBytes });
  return ['config.json', ...written];
}

/** transformers writes config.json with sorted keys. */
function sortKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
