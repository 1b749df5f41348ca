// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/config/internal`, with no semver promise.
export { PeftError } from './peft-error.js';
export { ConfigError, type ConfigIssue } from './config-error.js';
export type { LenientReadOptions, ReadOptions } from './config-format.js';
export {
  createLoraConfig,
  type LoraBias,
  loraBiasModes,
  type LoraConfig,
  type LoraConfigFile,
  loraConfigFileSchema,
  loraConfigFromSnakeCase,
  type LoraConfigInput,
  loraConfigSchema,
  loraConfigToSnakeCase,
  parseLoraConfigJson,
  parseLoraConfigObject,
  serializeLoraConfig,
  type TaskType,
  taskTypes,
} from './lora-config.js';
export {
  type BitsAndBytesConfig,
  type BitsAndBytesConfigFile,
  bitsAndBytesConfigFileSchema,
  bitsAndBytesConfigFromSnakeCase,
  type BitsAndBytesConfigInput,
  bitsAndBytesConfigSchema,
  bitsAndBytesConfigToSnakeCase,
  type ComputeDtype,
  computeDtypes,
  createBitsAndBytesConfig,
  parseBitsAndBytesConfigJson,
  parseBitsAndBytesConfigObject,
  type QuantStorageDtype,
  quantStorageDtypes,
  type QuantType,
  quantTypes,
  serializeBitsAndBytesConfig,
} from './bits-and-bytes-config.js';
export {
  createTrainingConfig,
  type LearningRateSchedulerType,
  learningRateSchedulerTypes,
  parseTrainingConfigJson,
  parseTrainingConfigObject,
  serializeTrainingConfig,
  type TrainingBackend,
  trainingBackends,
  type TrainingConfig,
  type TrainingConfigFile,
  trainingConfigFromSnakeCase,
  type TrainingConfigInput,
  trainingConfigSchema,
  trainingConfigToSnakeCase,
} from './training-config.js';
