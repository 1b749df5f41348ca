export * from './svd.js';
