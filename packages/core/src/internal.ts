// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/core/internal` may change in any release. The public API is ./index.ts.
export { brandClass } from '@peft-ts/config/internal';
export { sameShape, copyParameter } from './parameter.js';
export { nextSeed } from './random.js';
export { markTrainableByName } from './parameter-count.js';
export { parameterWeightAccess } from './weight-access.js';
export { packedLinearForward, linear, uniformFanIn } from './layers/linear.js';
export { embeddingLookup } from './layers/embedding.js';
export {
  isHalfDtype,
  packHalfRows,
  unpackHalfRows,
  widenHalfBits,
  narrowToHalfBits,
  mergeIntoHalfBits,
  widenHalfWords,
  widenHalfRows,
  widenHalfWordsByOps,
  halfWordsParameter,
  HALF_SAFETENSORS_DTYPES,
  type HalfMatrix,
  halfWordsPerRow,
  WIDEN_HALF_KERNEL,
  type HalfWords,
  HalfWeight,
} from './layers/half-storage.js';
export { conv2d, type Pair, type Conv2dGeometry } from './layers/conv2d.js';
export { fullMatch, matchFromStart, layerIndexOf } from './adapter/target-matching.js';
export { resolveAllLinear, resolveTargetSelection } from './adapter/inject-adapter.js';
export { checkRowAdapters } from './adapter/row-adapters.js';
export { mergedAdaptersError } from './adapter/tuner-layer.js';
export {
  toTfTensor,
  fromTfTensor,
  checkTensorDtype,
  writeTextFileAtomically,
  FLOAT_WEIGHT_DTYPES,
} from './tensor-io.js';
export { countNonFinite, checkFiniteValues } from './finite-check.js';
export { untracked, rowNorms } from './ops.js';
export { matMul } from './matmul.js';
export { scopedBackward } from './gradient-checkpointing.js';
export { cloneSharingParameters } from './clone-module.js';
export { transpose, multiply } from './linalg/index.js';
export { HOST_BACKENDS } from './host-backends.js';
export { hasFusedKernel, runFusedKernel } from './backend/fused-kernels.js';
export {
  elementwiseProgram,
  namedInputs,
  type ProgramUniform,
  type WebgpuBackendLike,
} from './webgpu/webgpu-program.js';
export { storesCheckpointTensors, type StoresCheckpointTensors } from './stored-layer-tensors.js';
