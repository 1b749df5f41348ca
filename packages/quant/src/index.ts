// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/quant/internal`, with no semver promise.
export { bnbCheckpointLinear } from './bnb-checkpoint-linear.js';
export { dequantize4bit } from './dequantize-4bit.js';
export { dequantizeBlockwise8bit } from './dequantize-blockwise-8bit.js';
export { QuantError } from './errors.js';
export { int8VectorwiseDequantize } from './int8-vectorwise-dequantize.js';
export { int8VectorwiseQuantize, type Int8Matrix, type Int8VectorwiseQuantized } from './int8-vectorwise-quantize.js';
export { Linear4bit, type Linear4bitOptions } from './linear-4bit.js';
export { Linear8bitLt, type Linear8bitLtOptions } from './linear-8bit-lt.js';
export { nf4RoundTrip } from './nf4-round-trip.js';
export { loftqQuantizer } from './loftq-quantizer.js';
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
export {
  quantizedWeightBytes,
  type QuantizedWeightBytes,
  type QuantizedWeightFormat,
} from './quantized-weight-bytes.js';
