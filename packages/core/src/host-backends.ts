/**
 * Backends whose tensors live in host memory: reading a value back is cheap and synchronous there,
 * so layers may decide (and decode packed storage) on the host; on device backends (webgpu) they stay on the device.
 */
export const HOST_BACKENDS: ReadonlySet<string> = new Set(['cpu', 'wasm']);
