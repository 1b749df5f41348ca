import * as tf from '@tensorflow/tfjs-core';
import { Embedding, HalfEmbedding, HalfLinear, Linear } from '@peft-ts/core';
import { isHalfDtype, narrowToHalfBits } from '@peft-ts/core/internal';
import { initialParameterValue, type DecoderForCausalLM } from './causal-lm.js';
import type { LoadCheckpointOptions } from './load-checkpoint.js';

export type RandomCausalLmOptions = Pick<LoadCheckpointOptions, 'createLinear' | 'torchDtype'>;

/**
 * Initialises the shape-only `model` randomly (as its non-meta constructor would) tensor by tensor, the way
 * `loadCausalLm` builds one from a checkpoint: each linear weight is created, handed to `createLinear` (e.g. a 4-bit
 * quantizer) and disposed before the next, so a quantized model of any size is built without ever holding its float
 * form. With a half `torch_dtype` (and `torchDtype` not 'float32') the embedding and the linear weights that
 * `createLinear` leaves keep half storage, as a loaded half checkpoint does.
 */
export function randomCausalLm<M extends DecoderForCausalLM>(model: M, options: RandomCausalLmOptions = {}): M {
  const { torch_dtype: dtype, initializer_range: deviation, tie_word_embeddings: tied } = model.decoderConfig;
  const halfDtype = options.torchDtype !== 'float32' && isHalfDtype(dtype) && !tied ? dtype : null;
  try {
    for (const [path, module] of model.namedModules()) {
      for (const [name, parameter] of module.directParameters()) {
        if (!parameter.isMeta) continue;
        const value = initialParameterValue(module, parameter.shape, deviation);
        try {
          const isWeight = name === 'weight' && (module instanceof Linear || module instanceof Embedding);
          const replacement =
            isWeight && module instanceof Linear
              ? options.createLinear?.({ key: path, weight: value as tf.Tensor2D, inFeatures: module.inFeatures, outFeatures: module.outFeatures })
              : undefined;
          if (replacement) {
            model.setSubmodule(path, replacement);
          } else if (isWeight && halfDtype) {
            const [rows, columns] = parameter.shape;
            const matrix = { dtype: halfDtype, rows, columns, bits: narrowToHalfBits(value.dataSync() as Float32Array, halfDtype) };
            const paddingIndex = (module as Embedding).paddingIndex;
            model.setSubmodule(path, module instanceof Embedding ? new HalfEmbedding(matrix, { paddingIndex }) : new HalfLinear(matrix));
          } else {
            parameter.set(value, name);
          }
        } finally {
          value.dispose();
        }
      }
    }
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}
