// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/backend-native/internal` may change in any release. The public API is ./index.ts.
export type { FourBitLayout, FourBitOperands, Int8Layout } from './backend.js';
