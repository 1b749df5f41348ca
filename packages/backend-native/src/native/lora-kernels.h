// A LoRA linear layer as one call each way: the frozen base product and the rank-r adapter branch share their
// output (sgemm accumulates into it), where the op composition ran five products and an add, each through tfjs;
// and DoRA's row norms of the merged weight without materialising it.
#pragma once

#include <node_api.h>

namespace peft_native {

napi_value LoraLinear(napi_env env, napi_callback_info info);
napi_value LoraLinearGrad(napi_env env, napi_callback_info info);
napi_value LowRankRowNorms(napi_env env, napi_callback_info info);

}  // namespace peft_native
