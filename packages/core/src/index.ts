// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/core/internal`, with no semver promise.
export {
  PeftError,
  MetaTensorError,
  ModulePathError,
  StateDictError,
  AdapterInjectionError,
  UnknownAdapterError,
  MergeError,
  NonFiniteTensorError,
  TensorDtypeError,
} from './errors.js';
export { type ParameterDtype, type ParameterSpec, Parameter } from './parameter.js';
export {
  type NamedParameter,
  type NamedModule,
  type LoadStateDictResult,
  Module,
  ModuleList,
  ModuleDict,
  ParameterDict,
} from './module.js';
export { manualSeed, randomState, setRandomState, SeededRandom } from './random.js';
export { countParameters, type ParameterCount } from './parameter-count.js';
export { isLinearLike, type WeightAccess, type LinearLike } from './weight-access.js';
export type { QuantizationRoundTrip } from './quantization-round-trip.js';
export { type LinearOptions, Linear } from './layers/linear.js';
export { type EmbeddingOptions, Embedding } from './layers/embedding.js';
export type { HalfDtype } from './layers/half-storage.js';
export { type HalfLinearOptions, HalfLinear } from './layers/half-linear.js';
export { HalfEmbedding } from './layers/half-embedding.js';
export { type Conv2dOptions, Conv2d } from './layers/conv2d.js';
export { RMSNorm } from './layers/rms-norm.js';
export { Dropout } from './layers/dropout.js';
export { isTargetModule, type TargetSelection } from './adapter/target-matching.js';
export type {
  DispatchOptions,
  AdapterDispatcher,
  AdapterMethod,
  AdapterTargetModel,
} from './adapter/adapter-method.js';
export { injectAdapter, type InjectionResult } from './adapter/inject-adapter.js';
export {
  currentRowAdapters,
  withRowAdapters,
  BASE_MODEL_ROW,
  type RowAdapterInput,
  type RowAdapterRouting,
} from './adapter/row-adapters.js';
export { ModulesToSaveWrapper } from './adapter/modules-to-save-wrapper.js';
export { type TunerBaseLayer, TunerLayer } from './adapter/tuner-layer.js';
export { type TunerConfig, type TunerModelOptions, type MergeOptions, TunerModel } from './adapter/tuner-model.js';
export { isDecoderModel, type DecoderLayer, type DecoderModel } from './decoder-model.js';
export { readTensorFile, writeTensorFile, type ReadTensorFileOptions } from './tensor-io.js';
export type { FiniteCheck } from './finite-check.js';
export {
  gradientCheckpoint,
  type GradientCheckpointOptions,
  checkpoint,
  type CheckpointOptions,
} from './gradient-checkpointing.js';
export { copyModule } from './clone-module.js';
export {
  hostMatrix,
  svd,
  svdOfProduct,
  type HostMatrix,
  type SingularValueDecomposition,
  type SvdOptions,
} from './linalg/index.js';
export type { StoredLayerTensors } from './stored-layer-tensors.js';
