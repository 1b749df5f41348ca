// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/quant/internal` may change in any release. The public API is ./index.ts.
export { assertBlocksize } from './assert-blocksize.js';
export { blockwiseAbsmax } from './blockwise-absmax.js';
export { BNB_ROW_WEIGHT_FORMAT, linear4bitStateDict, linear8bitStateDict, quantStateKey } from './bnb-state-dict.js';
export {
  dequantize4bitTensor,
  fourBitTensors,
  matMul4bitTensor,
  type FourBitTensors,
} from './dequantize-4bit-tensor.js';
export { dequantize4bitTransposed } from './dequantize-4bit-transposed.js';
export { dequantizeAbsmax } from './dequantize-absmax.js';
export { doubleQuantizeAbsmax } from './double-quantize-absmax.js';
export { dynamicCodeIndex } from './dynamic-code-index.js';
export { createDynamicMap, DYNAMIC_MAP } from './dynamic-map.js';
export { bytesOfWords, packBytesIntoWords, wordsTensor } from './packed-words.js';
export { float32Fma } from './float32-fma.js';
export { float32Mean } from './float32-mean.js';
export { fourBitCode, type FourBitCode } from './four-bit-code.js';
export { encodeFp4, FP4_CODE } from './fp4-code.js';
export { int8MatmulReference } from './int8-matmul-reference.js';
export { encodeNf4, NF4_CODE } from './nf4-code.js';
export { normalFloatRoundTrip, normalMap } from './loftq-quantizer.js';
export { INT8_BYTE_OFFSET, packInt8 } from './pack-int8.js';
export { parseQuantState, type QuantStateJson } from './parse-quant-state.js';
export { roundHalfToEven } from './round-half-to-even.js';
export { serializeQuantState } from './serialize-quant-state.js';
export { torchLinspaceFloat32 } from './torch-linspace.js';
export { unpackInt8 } from './unpack-int8.js';
export { quantizedParameterCount } from './quantized-parameter-count.js';
