// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/replication/internal` may change in any release. The public API is ./index.ts.
export { replicationMap, appliedReplication, unshareLayerParameters } from './replicate-layers.js';
