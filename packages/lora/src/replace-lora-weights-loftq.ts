import * as tf from '@tensorflow/tfjs-core';
import { Linear, PeftError, hostMatrix } from '@peft-ts/core';
import { toTfTensor } from '@peft-ts/core/internal';
import { openCheckpoint } from '@peft-ts/core/safetensors';
import { splitLowRank } from './loftq.js';
import { LoraLinear } from './lora-linear.js';
import { setParameterData } from './set-parameter-data.js';
import type { LoraModel } from './lora-model.js';

export type ReplaceLoraWeightsLoftqOptions = {
  /** The float checkpoint the quantized model was made from: a safetensors file, index or directory. */
  readonly modelPath: string;
  readonly adapterName?: string;
  /**
   * Called after each layer's replacement with its path; returning false restores that layer's previous
   * A and B (e.g. when the logits did not get closer to the float model's).
   */
  readonly callback?: (lora: LoraModel, moduleName: string) => boolean | Promise<boolean>;
};

/**
 * PEFT 0.10's `replace_lora_weights_loftq`: for every LoRA layer over a quantized linear, reads the layer's
 * float weight W from the checkpoint and sets A, B to the rank-r SVD fit of W − dequant(Q) (one LoftQ
 * step on the existing quantization). PEFT takes bitsandbytes 4-bit layers only; here any quantized
 * linear qualifies, since the dequantized weight comes through WeightAccess. Checkpoint names are the
 * module paths, or the paths without their first component (a base-model checkpoint, as PEFT's
 * `base_model_prefix` fallback).
 */
export async function replaceLoraWeightsLoftq(lora: LoraModel, options: ReplaceLoraWeightsLoftqOptions): Promise<void> {
  const adapterName = options.adapterName ?? 'default';
  const checkpoint = await openCheckpoint(options.modelPath);
  try {
    let replaced = 0;
    for (const [key, layer] of lora.loraLayers()) {
      if (!(layer instanceof LoraLinear) || layer.baseLayer instanceof Linear || !layer.adapterNames.includes(adapterName)) continue;
      const names = [`${key}.weight`, `${key.slice(key.indexOf('.') + 1)}.weight`];
      const name = names.find((candidate) => checkpoint.has(candidate));
      if (!name) throw new PeftError(`replaceLoraWeightsLoftq: ${options.modelPath} has no tensor ${[...new Set(names)].join(' or ')}`);
      const { outFeatures, inFeatures, weightAccess } = layer.baseLayer;
      const original = toTfTensor(await checkpoint.readTensor(name), name);
      const dequantized = weightAccess.getBaseWeight();
      let error: Float64Array;
      try {
        if (original.shape.join() !== dequantized.shape.join()) {
          throw new PeftError(`replaceLoraWeightsLoftq: ${name} is [${original.shape}], the layer's weight [${dequantized.shape}]`);
        }
        const [w, q] = await Promise.all([original.data(), dequantized.data()]);
        error = Float64Array.from(w, (value, index) => value - q[index]);
      } finally {
        tf.dispose([original, dequantized]);
      }
      const rank = layer.adapterSettings(adapterName).r;
      const { a, b } = splitLowRank(hostMatrix(outFeatures, inFeatures, error), rank);
      const loraA = layer.loraA(adapterName).weight;
      const loraB = layer.loraB(adapterName).weight;
      const previous = options.callback ? [loraA.value.clone(), loraB.value.clone()] : [];
      try {
        setParameterData(loraA, a);
        setParameterData(loraB, b);
        if (options.callback && !(await options.callback(lora, key))) {
          loraA.set(previous[0]);
          loraB.set(previous[1]);
        }
      } finally {
        tf.dispose(previous);
      }
      replaced++;
    }
    if (replaced === 0) throw new PeftError(`replaceLoraWeightsLoftq: no LoRA layer of adapter '${adapterName}' wraps a quantized linear`);
  } finally {
    await checkpoint.close();
  }
}
