export * from './dora-variant.js';
export * from './dora-method.js';
