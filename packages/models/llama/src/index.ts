export * from './llama-config.js';
export * from './llama-rope-scaling.js';
export * from './llama-model.js';
export * from './load-llama.js';
export * from './save-llama.js';
export * from './random-llama.js';
export * from './llama-presets.js';
export * from './llama-family.js';
