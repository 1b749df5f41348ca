// What moved to @peft-ts/model-common (generation, the decoder blocks, checkpoints, the tokenizer) stays importable
// from here.
export * from '@peft-ts/model-common';
export * from './mistral-config.js';
export * from './mistral-model.js';
export * from './load-mistral.js';
export * from './save-mistral.js';
export * from './mistral-presets.js';
export * from './random-mistral.js';
export * from './mistral-family.js';
export * from './deprecated-names.js';
