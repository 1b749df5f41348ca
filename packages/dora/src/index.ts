// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/dora/internal`, with no semver promise.
export { doraLinearVariant, doraConv2dVariant } from './dora-variant.js';
export { createDoraMethod, doraMethod } from './dora-method.js';
