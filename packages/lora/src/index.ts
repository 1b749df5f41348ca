export * from './lora-layer.js';
export * from './lora-linear.js';
export * from './lora-embedding.js';
export * from './lora-conv2d.js';
export * from './lora-method.js';
export * from './lora-model.js';
export * from './resolve-layer-settings.js';
export * from './adapter-state-dict.js';
export * from './adapter-io.js';
/** Moved to core with the rest of the generic adapter machinery; still exported here for existing imports. */
export { ModulesToSaveWrapper } from '@peft-ts/core';
export * from './merge-utils.js';
export * from './weighted-adapter.js';
export * from './loftq.js';
export * from './replace-lora-weights-loftq.js';
