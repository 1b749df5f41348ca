// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/replication/internal`, with no semver promise.
export { replicateLayers, type LayerRange, ReplicationError } from './replicate-layers.js';
