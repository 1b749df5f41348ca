// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/dora/internal` may change in any release. The public API is ./index.ts.
export { MAGNITUDE_PARAMETER } from './dora-variant.js';
