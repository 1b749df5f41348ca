export * from './replicate-layers.js';
