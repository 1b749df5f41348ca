import type { Module, ModuleList } from './module.js';

/** One decoder block of a causal LM, addressable by its position (KV-cache slot). */
export interface DecoderLayer extends Module {
  /** Position in the stack; the KV cache is indexed by it. Replication renumbers copies. */
  layerIndex: number;
  /** A new layer of the same shape whose parameters are the same Parameter objects (no copy). */
  cloneSharingParameters(): DecoderLayer;
}

/**
 * What layer replication and planning need from a decoder-only model: its layer list and the
 * config count that must follow it. Implemented by every model package (Mistral first).
 */
export interface DecoderModel extends Module {
  /** Dotted path of the layer list, e.g. `model.layers`. */
  readonly decoderLayersPath: string;
  decoderLayers(): ModuleList<DecoderLayer>;
  /** Replaces the layer list and updates the config's `num_hidden_layers`. */
  setDecoderLayers(layers: readonly DecoderLayer[]): void;
  /** Recompute each layer's activations in backward (see `checkpoint`), in training mode. */
  gradientCheckpointing: boolean;
}

export function isDecoderModel(module: Module): module is DecoderModel {
  return 'decoderLayers' in module && typeof module.decoderLayers === 'function';
}
