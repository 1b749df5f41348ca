import type { RotaryFrequencies } from './rotary-embedding.js';

/**
 * What the generic decoder-only causal LM is built from: the shape and numerics of a Llama-style stack (pre-norm
 * RMSNorm blocks, grouped-query attention with rotate-half RoPE, SwiGLU MLP). Field names are transformers'
 * config.json names, so a family's mapping from its own config is mostly a copy; every value is resolved (no
 * defaults are applied here: a family's config schema owns its defaults).
 */
export type DecoderConfig = {
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  /** Grouped-query attention: a divisor of num_attention_heads (equal to it for plain multi-head attention). */
  readonly num_key_value_heads: number;
  /** Width of one attention head (transformers' `head_dim`, else hidden_size / num_attention_heads). */
  readonly head_dim: number;
  readonly rms_norm_eps: number;
  readonly rope_theta: number;
  readonly max_position_embeddings: number;
  /**
   * The rotary frequencies adapt to sequences past max_position_embeddings (Llama's dynamic NTK `rope_scaling`), so
   * longer sequences are not refused. Default false.
   */
  readonly extends_positions?: boolean;
  /** Each query sees itself and the W keys before it; null for full causal attention. */
  readonly sliding_window: number | null;
  /** Biases on q_proj, k_proj, v_proj and o_proj (Llama's `attention_bias`). Default false. */
  readonly attention_bias?: boolean;
  /** Biases on gate_proj, up_proj and down_proj (Llama's `mlp_bias`). Default false. */
  readonly mlp_bias?: boolean;
  /** Dropout on the attention probabilities, in training mode. Default 0. */
  readonly attention_dropout?: number;
  /** `lm_head` shares the embedding's weight. */
  readonly tie_word_embeddings: boolean;
  /** Standard deviation of the random initialisation (transformers' `_init_weights`). */
  readonly initializer_range: number;
  /** The embedding row kept at zero on initialisation; also generation's default padding. */
  readonly pad_token_id: number | null;
  /** Generation's default stop tokens. */
  readonly eos_token_id: number | readonly number[] | null;
  /** float16 / bfloat16 keep a half checkpoint's weights half in memory (see `loadCausalLm`); saved in config.json. */
  readonly torch_dtype?: string | null;
  /** A pre-quantized checkpoint's saved BitsAndBytesConfig (see `loadQuantizedLinear`). */
  readonly quantization_config?: Readonly<Record<string, unknown>>;
};

/**
 * A family's hooks into the shared blocks beyond the plain config values. Functions, so they are not in
 * `DecoderConfig` (which mirrors config.json).
 */
export type DecoderVariant = {
  /** The rotary inverse frequencies (e.g. Llama's `rope_scaling`); default `1 / θ^(2j/d)`. */
  readonly rotaryFrequencies?: RotaryFrequencies;
};

/** The most positions a sequence may span: max_position_embeddings, unless the rotary frequencies adapt past it. */
export function positionLimit(config: DecoderConfig): number {
  return config.extends_positions ? Infinity : config.max_position_embeddings;
}

/** Width of one attention head: the explicit `head_dim`, else hidden_size / num_attention_heads (transformers' rule). */
export function headDimensionOf(config: { readonly head_dim?: number; readonly hidden_size: number; readonly num_attention_heads: number }): number {
  return config.head_dim ?? config.hidden_size / config.num_attention_heads;
}

/** The config.json fields of the Llama lineage that map one to one onto `DecoderConfig`. */
export type LineageConfigFields = Pick<
  DecoderConfig,
  | 'vocab_size'
  | 'hidden_size'
  | 'intermediate_size'
  | 'num_hidden_layers'
  | 'num_attention_heads'
  | 'num_key_value_heads'
  | 'rms_norm_eps'
  | 'rope_theta'
  | 'max_position_embeddings'
  | 'attention_dropout'
  | 'tie_word_embeddings'
  | 'initializer_range'
  | 'pad_token_id'
  | 'eos_token_id'
  | 'torch_dtype'
  | 'quantization_config'
> & { readonly head_dim?: number };

/**
 * What a family's config shares with `DecoderConfig`, copied field by field, `head_dim` resolved (else hidden_size /
 * num_attention_heads); the family adds what it decides itself (the sliding window, biases, position limits).
 */
export function lineageDecoderFields(config: LineageConfigFields): Omit<DecoderConfig, 'sliding_window'> {
  return {
    vocab_size: config.vocab_size,
    hidden_size: config.hidden_size,
    intermediate_size: config.intermediate_size,
    num_hidden_layers: config.num_hidden_layers,
    num_attention_heads: config.num_attention_heads,
    num_key_value_heads: config.num_key_value_heads,
    head_dim: headDimensionOf(config),
    rms_norm_eps: config.rms_norm_eps,
    rope_theta: config.rope_theta,
    max_position_embeddings: config.max_position_embeddings,
    attention_dropout: config.attention_dropout,
    tie_word_embeddings: config.tie_word_embeddings,
    initializer_range: config.initializer_range,
    pad_token_id: config.pad_token_id,
    eos_token_id: config.eos_token_id,
    torch_dtype: config.torch_dtype,
    quantization_config: config.quantization_config,
  };
}
