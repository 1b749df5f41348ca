// Prints the WebGPU adapter tfjs will use and fails when it is a software renderer (see scripts/gpu-check.sh).
import { initBackend, isSoftwareAdapter } from '@peft-ts/core/backend';

const info = await initBackend('webgpu');
const software = isSoftwareAdapter({ info: { description: info.detail } });
console.log(`adapter: ${info.detail}${software ? ' (software renderer)' : ''}`);
if (software && !process.env.GPU_CHECK_ALLOW_SOFTWARE) process.exit(1);
