import type * as tf from '@tensorflow/tfjs-core';
import { PeftError, type LinearLike } from '@peft-ts/core';
import type { BitsAndBytesConfig } from '@peft-ts/config';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';

/** One linear weight as a loader reads it (the shape of `loadMistral`'s `createLinear` context). */
export type QuantizableLinear = {
  /** Module path, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly key: string;
  /** float32 [outFeatures, inFeatures]; not kept (the loader disposes it). */
  readonly weight: tf.Tensor2D;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** float32 [outFeatures], when the layer has one. */
  readonly bias?: tf.Tensor | null;
};

export type QuantizedLinearFactoryOptions = {
  /** Receives the factory's one-time notices (default `console.warn`). */
  readonly onWarning?: (message: string) => void;
};

/** transformers keeps the output head unquantized unless `llm_int8_skip_modules` says otherwise. */
const DEFAULT_SKIP_MODULES = ['lm_head'];

/** True when `entry` (one or more dotted segments) appears as whole segments of `key`. */
function containsSegments(key: string, entry: string): boolean {
  const parts = key.split('.');
  const wanted = entry.split('.');
  for (let start = 0; start + wanted.length <= parts.length; start++) {
    if (wanted.every((part, offset) => parts[start + offset] === part)) return true;
  }
  return false;
}

/**
 * transformers' bitsandbytes loading as a `createLinear` hook (e.g. `loadMistral(dir, { createLinear:
 * quantizedLinearFactory(config) })`): each linear weight is quantized as it is read, so the float model is never
 * held whole. `loadIn4bit` gives `Linear4bit` (quant type, double quant from the config, blocksize 64),
 * `loadIn8bit` gives `Linear8bitLt` with `llmInt8Threshold`. Left in float, as transformers does: `lm_head`
 * when `llmInt8SkipModules` is null, otherwise every module named in that list (an entry matches whole dotted
 * segments of the path: `mlp` skips `model.layers.0.mlp.up_proj`; transformers matches substrings, which would
 * also let `layers.1` skip `layers.10`). A bf16/fp16 compute dtype is accepted and computed in float32 (said
 * once); `bnb4bitQuantStorage` only changes how bnb views the same bytes, so it has no effect here.
 */
export function quantizedLinearFactory(
  config: BitsAndBytesConfig,
  options: QuantizedLinearFactoryOptions = {},
): (context: QuantizableLinear) => LinearLike | undefined {
  if (config.loadIn4bit === config.loadIn8bit) {
    throw new PeftError(
      config.loadIn4bit
        ? 'BitsAndBytesConfig: loadIn4bit and loadIn8bit are both true; choose one'
        : 'BitsAndBytesConfig: neither loadIn4bit nor loadIn8bit is set, so there is nothing to quantize',
    );
  }
  if (config.loadIn8bit && config.llmInt8HasFp16Weight) {
    throw new PeftError(
      'BitsAndBytesConfig.llmInt8HasFp16Weight: int8 training with fp16 master weights is not supported; ' +
        'leave it false (the default), which freezes the int8 weight as QLoRA-style training needs',
    );
  }
  const computeDtype = config.bnb4bitComputeDtype;
  if (config.loadIn4bit && computeDtype !== null && computeDtype !== 'float32') {
    (options.onWarning ?? console.warn)(
      `BitsAndBytesConfig.bnb4bitComputeDtype '${computeDtype}': 4-bit layers compute in float32 (tfjs has no ${computeDtype} kernels)`,
    );
  }
  const skipModules = config.llmInt8SkipModules ?? DEFAULT_SKIP_MODULES;
  return ({ key, weight, inFeatures, outFeatures, bias = null }) => {
    if (skipModules.some((entry) => containsSegments(key, entry))) return undefined;
    if (weight.rank !== 2 || weight.shape[0] !== outFeatures || weight.shape[1] !== inFeatures) {
      throw new PeftError(`${key}: expected a weight [${outFeatures}, ${inFeatures}], got [${weight.shape}]`);
    }
    if (config.loadIn8bit) return Linear8bitLt.fromWeight(weight, { threshold: config.llmInt8Threshold, bias });
    return Linear4bit.fromWeight(weight, {
      quantType: config.bnb4bitQuantType,
      compressStatistics: config.bnb4bitUseDoubleQuant,
      bias,
    });
  };
}
