import type { LlamaConfigInput } from './llama-config.js';

/** meta-llama/Llama-2-7b-hf's `config.json` (shape fields), for shape-only plans without the checkpoint. */
export const llama2_7bConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  hidden_act: 'silu',
  max_position_embeddings: 4096,
  initializer_range: 0.02,
  rms_norm_eps: 1e-5,
  pretraining_tp: 1,
  rope_scaling: null,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  use_cache: true,
  torch_dtype: 'float16',
} as const satisfies LlamaConfigInput;

/** A tiny config for tests and smoke runs: two layers, grouped-query attention, a short trained length. */
export const tinyLlamaConfig = {
  model_type: 'llama',
  vocab_size: 128,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
} as const satisfies LlamaConfigInput;
