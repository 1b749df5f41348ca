/**
 * cpu and wasm decode quantized storage with host loops. The native backend keeps host tensors too, but is left
 * out: its quantized kernels (FUSED_KERNEL_BACKENDS) beat the host loops.
 */
export { HOST_BACKENDS } from '@peft-ts/core/internal';
