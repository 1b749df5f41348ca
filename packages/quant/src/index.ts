export { assertBlocksize } from './assert-blocksize.js';
export { blockwiseAbsmax } from './blockwise-absmax.js';
export { bnbCheckpointLinear } from './bnb-checkpoint-linear.js';
export { BNB_ROW_WEIGHT_FORMAT, linear4bitStateDict, linear8bitStateDict, quantStateKey } from './bnb-state-dict.js';
export { dequantize4bit } from './dequantize-4bit.js';
export { dequantize4bitTensor, fourBitTensors, matMul4bitTensor, type FourBitTensors } from './dequantize-4bit-tensor.js';
export { dequantize4bitTransposed } from './dequantize-4bit-transposed.js';
export { dequantizeAbsmax } from './dequantize-absmax.js';
export { dequantizeBlockwise8bit } from './dequantize-blockwise-8bit.js';
export { doubleQuantizeAbsmax } from './double-quantize-absmax.js';
export { dynamicCodeIndex } from './dynamic-code-index.js';
export { createDynamicMap, DYNAMIC_MAP } from './dynamic-map.js';
export { QuantError } from './errors.js';
export { bytesOfWords, packBytesIntoWords, wordsTensor } from './packed-words.js';
export { float32Fma } from './float32-fma.js';
export { float32Mean } from './float32-mean.js';
export { fourBitCode, type FourBitCode } from './four-bit-code.js';
export { encodeFp4, FP4_CODE } from './fp4-code.js';
export { int8MatmulReference } from './int8-matmul-reference.js';
export { int8VectorwiseDequantize } from './int8-vectorwise-dequantize.js';
export { int8VectorwiseQuantize, type Int8Matrix, type Int8VectorwiseQuantized } from './int8-vectorwise-quantize.js';
export { Linear4bit, type Linear4bitOptions } from './linear-4bit.js';
export { Linear8bitLt, type Linear8bitLtOptions } from './linear-8bit-lt.js';
export { encodeNf4, NF4_CODE } from './nf4-code.js';
export { nf4RoundTrip } from './nf4-round-trip.js';
export { loftqQuantizer, normalFloatRoundTrip, normalMap } from './loftq-quantizer.js';
export { INT8_BYTE_OFFSET, packInt8 } from './pack-int8.js';
export { parseQuantState, type QuantStateJson } from './parse-quant-state.js';
export {
  prepareModelForKbitTraining,
  type PrepareModelForKbitTrainingOptions,
} from './prepare-model-for-kbit-training.js';
export type { DoubleQuantizedAbsmax, FloatDtype, QuantState4bit, QuantType } from './quant-state.js';
export { quantize4bit, type Quantize4bitOptions, type Quantized4bit } from './quantize-4bit.js';
export { quantizeBlockwise8bit, type QuantizedBlockwise8bit } from './quantize-blockwise-8bit.js';
export {
  quantizedLinearFactory,
  type QuantizableLinear,
  type QuantizedLinearFactoryOptions,
} from './quantized-linear-factory.js';
export { quantizedParameterCount } from './quantized-parameter-count.js';
export {
  quantizedWeightBytes,
  type QuantizedWeightBytes,
  type QuantizedWeightFormat,
} from './quantized-weight-bytes.js';
export { roundHalfToEven } from './round-half-to-even.js';
export { serializeQuantState } from './serialize-quant-state.js';
export { torchLinspaceFloat32 } from './torch-linspace.js';
export { unpackInt8 } from './unpack-int8.js';
