// Prints the WebGPU adapter tfjs will use and fails when there is none or it is a software renderer (see
// scripts/gpu-check.sh). Exit codes: 0 a hardware adapter (or a software one with GPU_CHECK_ALLOW_SOFTWARE set),
// 2 no adapter at all, 3 a software adapter.
import { initBackend, isSoftwareAdapter } from '@peft-ts/core/backend';

let detail: string;
try {
  detail = (await initBackend('webgpu')).detail;
} catch (error) {
  console.log(`adapter: none (${(error as Error).message})`);
  process.exit(2);
}
const software = isSoftwareAdapter({ info: { description: detail } });
// Dawn describes an OpenGL ES adapter as "OpenGL version …"; core falls back to it when Vulkan gives no adapter.
const api = /opengl/i.test(detail) ? 'OpenGL ES' : 'Vulkan';
console.log(`adapter: ${detail}`);
console.log(`adapter api: ${api}${software ? '; SOFTWARE renderer, not the GPU' : ''}`);
if (software && !process.env.GPU_CHECK_ALLOW_SOFTWARE) process.exit(3);
// Dawn's instance can keep the event loop alive; the answer is in, so leave now.
process.exit(0);
