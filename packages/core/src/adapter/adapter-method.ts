import type { Module } from '../module.js';
import type { TargetSelection } from './target-matching.js';

export type DispatchOptions<CONFIG> = {
  /** The module found at `key` (possibly already an adapter layer of the same method). */
  readonly target: Module;
  /** Its dotted path in the model, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly key: string;
  readonly adapterName: string;
  readonly config: CONFIG;
};

/**
 * Wraps a target for one kind of layer, or returns undefined when it does not handle that kind
 * (PEFT's `dispatch_*` functions). Returning the target itself means it was updated in place.
 */
export type AdapterDispatcher<CONFIG> = {
  /** The layer kind it handles, named in errors ('Linear', 'Embedding', …). */
  readonly supports: string;
  create(options: DispatchOptions<CONFIG>): Module | undefined;
};

/** An adapter method: its parameter prefix and the dispatchers tried, in order, per target. */
export type AdapterMethod<CONFIG extends TargetSelection> = {
  readonly type: string;
  /** Every trainable adapter parameter name contains it (`lora_`). */
  readonly parameterPrefix: string;
  readonly dispatchers: readonly AdapterDispatcher<CONFIG>[];
};

/** What a model offers injection beyond being a module tree. */
export type AdapterTargetModel = Module & {
  /** Targets used when a config gives none (PEFT's per-architecture table). */
  readonly defaultTargetModules?: readonly string[];
  /** The output embedding (`lm_head`), which `all-linear` leaves out. */
  readonly outputEmbeddingKey?: string;
};
