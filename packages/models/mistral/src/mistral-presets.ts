import type { MistralConfigInput } from './mistral-config.js';

/** Mistral-7B-v0.1's `config.json` (shape fields), for shape-only plans without the checkpoint. */
export const mistral7bV01Config = {
  architectures: ['MistralForCausalLM'],
  model_type: 'mistral',
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  torch_dtype: 'bfloat16',
} as const satisfies MistralConfigInput;

/** The benchmarks' small config (batch 4 × 256 in every benchmark of this repository). */
export const smallBenchmarkConfig = {
  vocab_size: 8192,
  hidden_size: 512,
  intermediate_size: 1536,
  num_hidden_layers: 8,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  max_position_embeddings: 1024,
} as const satisfies MistralConfigInput;
