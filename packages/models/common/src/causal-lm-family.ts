import type { CausalLmOptions, DecoderForCausalLM, FamilyConfig } from './causal-lm.js';
import type { DecoderConfig } from './decoder-config.js';
import type { LoadCheckpointOptions } from './load-checkpoint.js';
import type { SaveCheckpointOptions } from './save-checkpoint.js';

/**
 * One model family as an application uses it without knowing it (transformers' Auto classes): picked by
 * config.json's `model_type`, it validates configs, builds, loads and saves its causal LM.
 */
export interface CausalLmFamily<C extends FamilyConfig = FamilyConfig, M extends DecoderForCausalLM<C> = DecoderForCausalLM<C>> {
  /** config.json's `model_type`, e.g. `mistral`. */
  readonly modelType: string;
  /** transformers' class names for the family's causal LM (config.json's `architectures`), e.g. `MistralForCausalLM`. */
  readonly architectures: readonly string[];
  /** config.json contents by name, for shape-only plans without a checkpoint (e.g. `mistral-7b-v0.1`). */
  readonly presets: Readonly<Record<string, object>>;
  /** Validates a config given as JSON text or an object, every problem named by `source` and field. */
  parseConfig(input: string | object, options?: { source?: string }): C;
  /** The config as the shared decoder blocks read it (layer shapes, positions, dtype). */
  decoderConfig(config: C): DecoderConfig;
  /** A model with random weights, or shape-only with `meta` (planning: nothing is allocated). */
  create(config: C, options?: CausalLmOptions): M;
  /** Loads a Hugging Face checkpoint directory (config.json plus safetensors). */
  load(directory: string, options?: LoadCheckpointOptions): Promise<M>;
  /** Writes config.json and safetensors in transformers' layout; returns the files written. */
  save(model: M, directory: string, options?: SaveCheckpointOptions): Promise<string[]>;
  /** How many linear weights `load` hands to `createLinear` (for progress reports). */
  linearWeightCount(config: C): number;
}

/**
 * The linear weights of the shared decoder: q, k, v, o, gate, up and down per layer, plus `lm_head` unless it is
 * the embedding (then the checkpoint's copy, if any, is not read).
 */
export function decoderLinearWeightCount(config: DecoderConfig): number {
  return config.num_hidden_layers * 7 + (config.tie_word_embeddings ? 0 : 1);
}
