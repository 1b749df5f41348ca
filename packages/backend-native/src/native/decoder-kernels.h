// Fused kernels of decoder steps (rotary embedding, attention, the causal-LM loss): each one pass over
// its rows, where the tf-op composition takes several element-wise kernels and full-size intermediates.
#pragma once

#include <node_api.h>

namespace peft_native {

napi_value CrossEntropy(napi_env env, napi_callback_info info);
napi_value CrossEntropyGrad(napi_env env, napi_callback_info info);
napi_value Rotary(napi_env env, napi_callback_info info);
napi_value MaskedSoftmax(napi_env env, napi_callback_info info);
napi_value MaskedSoftmaxGrad(napi_env env, napi_callback_info info);
napi_value Attention(napi_env env, napi_callback_info info);
napi_value AttentionGrad(napi_env env, napi_callback_info info);

}  // namespace peft_native
