/**
 * Backends whose tensors live in host memory: reading a value back is cheap and synchronous there,
 * so layers may decide on the host; on device backends (webgpu) they stay on the device. The native
 * backend keeps host tensors too, but is left out: its quantized kernels (FUSED_KERNEL_BACKENDS) beat
 * the host loops.
 */
export const HOST_BACKENDS: ReadonlySet<string> = new Set(['cpu', 'wasm']);
