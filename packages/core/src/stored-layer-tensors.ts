import type { Module } from './module.js';
import type { SafetensorsTensor } from './safetensors/tensor-data.js';

/**
 * A layer with an on-disk form of its own (quantized codes and state as bitsandbytes serializes them): a model
 * saver writes these tensors, named relative to the layer (`weight`, `weight.absmax`, `SCB`, …), in place of a
 * float weight.
 */
export interface StoresCheckpointTensors {
  checkpointTensors(): Promise<Map<string, SafetensorsTensor>>;
}

export function storesCheckpointTensors(module: Module): module is Module & StoresCheckpointTensors {
  return typeof (module as Partial<StoresCheckpointTensors>).checkpointTensors === 'function';
}

/** A layer's tensors as a checkpoint stores them, handed to a hook that builds the layer from them. */
export type StoredLayerTensors = {
  /** Module path, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly key: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The layer's tensors by name relative to it (`weight`, `weight.absmax`, `SCB`, …); a bias is loaded separately. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** config.json's `quantization_config`, as stored. */
  readonly quantizationConfig: unknown;
  /** The checkpoint the tensors came from, for error messages. */
  readonly source: string;
};
