// What every native kernel file shares: reading N-API arguments as typed arrays and numbers, throwing a JS error,
// and splitting element-wise work over the threads the backend was given.
#pragma once

#include <node_api.h>
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace peft_native {

struct Floats {
  float* data = nullptr;
  size_t length = 0;
};

struct Words {
  const uint8_t* bytes = nullptr;
  size_t byteLength = 0;
};

inline bool fail(napi_env env, const char* message) {
  napi_throw_error(env, "PEFT_NATIVE", message);
  return false;
}

inline bool typedArray(napi_env env, napi_value value, napi_typedarray_type expected, void** data, size_t* length, const char* what) {
  bool isTypedArray = false;
  napi_is_typedarray(env, value, &isTypedArray);
  if (!isTypedArray) return fail(env, what);
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset);
  if (type != expected) return fail(env, what);
  return true;
}

inline bool floats(napi_env env, napi_value value, Floats* result, const char* what) {
  void* data;
  if (!typedArray(env, value, napi_float32_array, &data, &result->length, what)) return false;
  result->data = static_cast<float*>(data);
  return true;
}

inline bool words(napi_env env, napi_value value, Words* result, const char* what) {
  void* data;
  size_t length;
  if (!typedArray(env, value, napi_int32_array, &data, &length, what)) return false;
  result->bytes = static_cast<const uint8_t*>(data);
  result->byteLength = length * 4;
  return true;
}

inline bool isNull(napi_env env, napi_value value) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  return type == napi_null || type == napi_undefined;
}

inline int64_t integer(napi_env env, napi_value value) {
  int64_t result = 0;
  napi_get_value_int64(env, value, &result);
  return result;
}

inline bool boolean(napi_env env, napi_value value) {
  bool result = false;
  napi_get_value_bool(env, value, &result);
  return result;
}

inline double number(napi_env env, napi_value value) {
  double result = 0;
  napi_get_value_double(env, value, &result);
  return result;
}

template <size_t N>
bool arguments(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != N) return fail(env, "wrong number of arguments");
  return true;
}

inline napi_value undefinedValue(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

inline CBLAS_TRANSPOSE flag(bool transposed) { return transposed ? CblasTrans : CblasNoTrans; }

// Threads for the element-wise kernels: the same count OpenBLAS gets (they never run at the same time).
inline int elementwiseThreads = 1;
// Below this many elements a kernel runs on the calling thread: starting threads costs more than it saves.
constexpr int64_t kParallelGrain = 1 << 16;

// body(begin, end) over [0, count), split into one contiguous range per thread when `elements` (the work behind
// count) is large enough.
template <typename Body>
void parallelFor(int64_t count, int64_t elements, const Body& body) {
  const int64_t threads = std::min<int64_t>({int64_t(elementwiseThreads), count, std::max<int64_t>(1, elements / kParallelGrain)});
  if (threads <= 1) {
    body(int64_t(0), count);
    return;
  }
  std::vector<std::thread> workers;
  workers.reserve(size_t(threads - 1));
  const int64_t chunk = (count + threads - 1) / threads;
  for (int64_t thread = 1; thread < threads; thread++) {
    const int64_t begin = std::min(count, thread * chunk), end = std::min(count, begin + chunk);
    workers.emplace_back([&body, begin, end] { body(begin, end); });
  }
  body(int64_t(0), std::min(count, chunk));
  for (std::thread& worker : workers) worker.join();
}

// body(begin, end) over [0, count) independent pieces of small products. With at least as many pieces as threads,
// each thread takes a contiguous range and OpenBLAS runs single-threaded inside it (products this small split
// badly across threads); otherwise the calling thread takes them all, each product on OpenBLAS's threads.
template <typename Body>
void parallelProducts(int64_t count, const Body& body) {
  if (elementwiseThreads <= 1 || count < elementwiseThreads) {
    body(int64_t(0), count);
    return;
  }
  openblas_set_num_threads(1);
  parallelFor(count, count * kParallelGrain, body);
  openblas_set_num_threads(elementwiseThreads);
}

}  // namespace peft_native
