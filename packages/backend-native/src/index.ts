// The public API. What the other peft-ts packages, the trainer and the tests share beyond it is exported by
// ./internal.ts as `@peft-ts/backend-native/internal`, with no semver promise.
export {
  MathBackendNative,
  NATIVE_BACKEND_NAME,
  NativeBackendError,
  nativeBackendStatus,
  registerNativeBackend,
  type NativeBackendOptions,
} from './backend.js';
