import { readdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { PeftError } from '../errors.js';
import { registerTfjsCoreExtras } from './register-tfjs-core-extras.js';
import { registerWasmFallbackKernels } from './wasm-fallback-kernels.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'native' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

export type BackendInfo = {
  /** The backend now active in tfjs. */
  readonly name: BackendName;
  /** What was found: the package, the GPU adapter, or why a preferred backend was skipped. */
  readonly detail: string;
};

export const backendNames: readonly BackendRequest[] = ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'];

export class BackendError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:BackendError');
  }
}

async function activate(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new BackendError(`the ${name} backend failed to initialise`);
  await tf.ready();
}

async function initTensorflow(): Promise<string> {
  const errors: string[] = [];
  for (const packageName of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(packageName);
      await activate('tensorflow');
      return packageName;
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
      if (!missing) errors.push(`${packageName}: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  throw new BackendError(
    errors.length ? `tfjs-node failed to load (${errors.join('; ')})` : 'needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, neither is installed',
  );
}

type GpuAdapterLike = { info?: { vendor?: string; architecture?: string; description?: string; device?: string }; isFallbackAdapter?: boolean };

/** The adapter's identity; GPUAdapterInfo fields are prototype getters, so they are read by name. */
function describeAdapter(adapter: GpuAdapterLike): string {
  const info = adapter.info ?? {};
  return [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unknown adapter';
}

/** Software rasterisers expose WebGPU too; they are no faster than wasm, so `auto` skips them. */
export function isSoftwareAdapter(adapter: GpuAdapterLike): boolean {
  const text = describeAdapter(adapter).toLowerCase();
  return Boolean(adapter.isFallbackAdapter) || /llvmpipe|swiftshader|lavapipe|software|softpipe/.test(text);
}

let webgpuReady: Promise<GpuAdapterLike> | null = null;

async function setUpWebgpu(): Promise<GpuAdapterLike> {
  const dawn = (await import('webgpu')) as { create: (flags: string[]) => unknown; globals: object };
  Object.assign(globalThis, dawn.globals);
  const attempts: { flags: string[]; options: object }[] = [
    { flags: [], options: { powerPreference: 'high-performance' } },
    // Headless machines without Vulkan: Dawn's OpenGL ES backend on a surfaceless EGL display.
    { flags: ['backend=opengles'], options: { featureLevel: 'compatibility' } },
  ];
  for (const attempt of attempts) {
    if (attempt.flags.includes('backend=opengles')) process.env.EGL_PLATFORM ??= 'surfaceless';
    const gpu = dawn.create(attempt.flags) as { requestAdapter(options?: object): Promise<GpuAdapterLike | null> };
    const adapter = await gpu.requestAdapter(attempt.options).catch(() => null);
    if (adapter) {
      // tfjs requests its own adapter without our options (e.g. the compatibility feature level
      // OpenGL ES needs), so every request goes through with them added.
      const navigatorGpu = new Proxy(gpu, {
        get: (target, property) =>
          property === 'requestAdapter'
            ? (options?: object) => target.requestAdapter({ ...options, ...attempt.options })
            : Reflect.get(target, property),
      });
      Object.defineProperty(globalThis, 'navigator', { value: { gpu: navigatorGpu }, configurable: true, writable: true });
      // The tfjs webgpu backend reads navigator.gpu when its module loads, so import it only now.
      await import('@tensorflow/tfjs-backend-webgpu');
      return adapter;
    }
  }
  throw new BackendError('no WebGPU adapter found (Vulkan driver or EGL/OpenGL ES needed)');
}

type WebgpuBackendLike = {
  device: { limits: { maxStorageBufferBindingSize: number } };
  write(values: unknown, shape: number[], dtype: string): unknown;
  move(dataId: unknown, values: unknown, shape: number[], dtype: string, refCount: number): void;
};

const guardedBackends = new WeakSet<object>();

/**
 * tfjs' WebGPU backend hands a tensor larger than one storage buffer may be to the GPU anyway, and
 * reads back zeros. Every tensor the backend creates is checked first, so that case is a clear
 * error instead of silently wrong numbers.
 */
function guardStorageBufferLimit(backend: WebgpuBackendLike): number {
  const limit = backend.device.limits.maxStorageBufferBindingSize;
  if (guardedBackends.has(backend)) return limit;
  guardedBackends.add(backend);
  const check = (shape: number[], dtype: string) => {
    const bytes = shape.reduce((product, dimension) => product * dimension, 1) * (dtype === 'complex64' ? 8 : 4);
    if (bytes > limit) {
      const mebibytes = (value: number) => `${(value / 2 ** 20).toFixed(1)} MiB`;
      throw new BackendError(
        `webgpu: a ${dtype} [${shape}] tensor needs ${mebibytes(bytes)}, over this adapter's ${mebibytes(limit)} storage-buffer limit ` +
          '(it would read back as zeros); use a smaller batch or sequence, or another backend',
      );
    }
  };
  const write = backend.write.bind(backend);
  const move = backend.move.bind(backend);
  backend.write = (values, shape, dtype) => {
    check(shape, dtype);
    return write(values, shape, dtype);
  };
  backend.move = (dataId, values, shape, dtype, refCount) => {
    check(shape, dtype);
    move(dataId, values, shape, dtype, refCount);
  };
  return limit;
}

async function initWebgpu(requireHardware: boolean): Promise<string> {
  webgpuReady ??= setUpWebgpu();
  const adapter = await webgpuReady;
  const description = describeAdapter(adapter);
  if (requireHardware && isSoftwareAdapter(adapter)) {
    throw new BackendError(`the WebGPU adapter is a software renderer (${description})`);
  }
  await activate('webgpu');
  const limit = guardStorageBufferLimit(tf.backend() as unknown as WebgpuBackendLike);
  return `${description}; storage buffers up to ${Math.round(limit / 2 ** 20)} MiB`;
}

/**
 * On Linux a hardware WebGPU adapter needs a Vulkan driver, announced by an ICD manifest; probing
 * without one only makes Dawn print driver errors, so `auto` skips the probe then.
 */
function mayHaveHardwareGpu(): boolean {
  if (process.platform !== 'linux') return true;
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return true;
  return ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'].some((directory) => {
    try {
      return readdirSync(directory).some((name) => name.endsWith('.json') && !/lvp|lavapipe|swiftshader/i.test(name));
    } catch {
      return false;
    }
  });
}

type NativeBackendModule = typeof import('@peft-ts/backend-native');

/** Loaded by name, as tfjs-node is: an optional package, so core has no build-time tie to it. */
const NATIVE_PACKAGE = '@peft-ts/backend-native';
const NATIVE_SETUP = `install ${NATIVE_PACKAGE} with OpenBLAS (apt-get install libopenblas-dev, or your system's OpenBLAS package) and a C++ compiler`;

let nativeModule: Promise<NativeBackendModule | null> | null = null;

function loadNativeModule(): Promise<NativeBackendModule | null> {
  nativeModule ??= (import(NATIVE_PACKAGE) as Promise<NativeBackendModule>).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_MODULE_NOT_FOUND') return null;
    throw error;
  });
  return nativeModule;
}

/** Whether the native backend can start here: its package is installed and its addon (with OpenBLAS) loads. */
export async function nativeBackendAvailable(): Promise<boolean> {
  return Boolean((await loadNativeModule())?.nativeBackendStatus().available);
}

async function initNative(): Promise<string> {
  const native = await loadNativeModule();
  if (!native) throw new BackendError(`native: ${NATIVE_PACKAGE} is not installed; ${NATIVE_SETUP}`);
  const status = native.nativeBackendStatus();
  if (!status.available) throw new BackendError(`native: ${status.reason}`);
  let threads: number;
  try {
    ({ threads } = native.registerNativeBackend());
  } catch (error) {
    throw new BackendError((error as Error).message);
  }
  await activate('native');
  return `${NATIVE_PACKAGE} (OpenBLAS, ${threads} thread${threads === 1 ? '' : 's'})`;
}

async function initWasm(): Promise<string> {
  await import('@tensorflow/tfjs-backend-wasm');
  await activate('wasm');
  registerWasmFallbackKernels();
  return 'tfjs-backend-wasm (SIMD, single thread)';
}

async function initCpu(): Promise<string> {
  await import('@tensorflow/tfjs-backend-cpu');
  await activate('cpu');
  return 'tfjs-backend-cpu';
}

/**
 * Selects and initialises a tfjs backend, registering gradients and chained tensor methods first. `auto` tries,
 * in order, tfjs-node(-gpu) when installed, a hardware WebGPU adapter, the native backend when its addon is
 * built, then wasm.
 */
export async function initBackend(request: BackendRequest = 'auto'): Promise<BackendInfo> {
  if (!backendNames.includes(request)) {
    throw new BackendError(`unknown backend '${request}': expected one of ${backendNames.join(', ')}`);
  }
  await registerTfjsCoreExtras();
  switch (request) {
    case 'tensorflow':
      return { name: 'tensorflow', detail: await initTensorflow() };
    case 'webgpu':
      return { name: 'webgpu', detail: await initWebgpu(false) };
    case 'native':
      return { name: 'native', detail: await initNative() };
    case 'wasm':
      return { name: 'wasm', detail: await initWasm() };
    case 'cpu':
      return { name: 'cpu', detail: await initCpu() };
    case 'auto': {
      const skipped: string[] = [];
      for (const [name, init] of [
        ['tensorflow', initTensorflow],
        [
          'webgpu',
          () => (mayHaveHardwareGpu() ? initWebgpu(true) : Promise.reject(new BackendError('no Vulkan driver installed'))),
        ],
        ['native', initNative],
      ] as const) {
        try {
          const detail = await init();
          return { name, detail: skipped.length ? `${detail}; skipped ${skipped.join(', ')}` : detail };
        } catch (error) {
          skipped.push(`${name} (${(error as Error).message})`);
        }
      }
      return { name: 'wasm', detail: `${await initWasm()}; skipped ${skipped.join(', ')}` };
    }
  }
}
