export {
  MathBackendNative,
  NATIVE_BACKEND_NAME,
  NativeBackendError,
  nativeBackendStatus,
  registerNativeBackend,
  type FourBitLayout,
  type FourBitOperands,
  type Int8Layout,
  type NativeBackendOptions,
} from './backend.js';
