/** bitsandbytes 4-bit data types. */
export type QuantType = 'nf4' | 'fp4';

/** Names bitsandbytes writes for the original weight dtype (`str(dtype)` without `torch.`). */
export type FloatDtype = 'float32' | 'float16' | 'bfloat16';

/**
 * Per-block absmax compressed by double quantization (bnb `compress_statistics=True`):
 * `absmax[b] = DYNAMIC_MAP[codes[b]] · absmax[⌊b / blocksize⌋] + offset`.
 */
export interface DoubleQuantizedAbsmax {
  /** 8-bit dynamic-map codes of `absmax − offset`, one per 4-bit block (bnb `quant_state.absmax`). */
  readonly codes: Uint8Array;
  /** fp32 absmax of each chunk of `blocksize` centred values (bnb `state2.absmax`, `nested_absmax`). */
  readonly absmax: Float32Array;
  /** fp32 mean of the original absmax (bnb `offset`, `nested_offset`). */
  readonly offset: number;
  /** Chunk size of the nested quantization; bnb always uses 256. */
  readonly blocksize: number;
}

interface QuantState4bitFields {
  readonly quantType: QuantType;
  readonly blocksize: number;
  /** Shape of the original tensor; its row-major flattening is what was quantized. */
  readonly shape: readonly number[];
  readonly dtype: FloatDtype;
}

/** bnb `QuantState` of a 4-bit tensor: plain fp32 absmax, or its double-quantized form. */
export type QuantState4bit = QuantState4bitFields &
  (
    | { readonly absmax: Float32Array; readonly nested?: undefined }
    | { readonly absmax?: undefined; readonly nested: DoubleQuantizedAbsmax }
  );
