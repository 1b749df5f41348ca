// Fused kernels of model layers (RMSNorm, SwiGLU): each one pass over its rows, where the tf-op composition takes
// several element-wise kernels and full-size intermediates.
#pragma once

#include <node_api.h>

namespace peft_native {

napi_value RmsNorm(napi_env env, napi_callback_info info);
napi_value RmsNormGrad(napi_env env, napi_callback_info info);
napi_value SwiGlu(napi_env env, napi_callback_info info);
napi_value SwiGluGrad(napi_env env, napi_callback_info info);

}  // namespace peft_native
