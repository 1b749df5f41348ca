// The N-API functions of gather-kernels.cc and conv-kernels.cc, which addon.cc exports.
#pragma once

#include <node_api.h>

namespace peft_native {

napi_value Gather(napi_env env, napi_callback_info info);
napi_value SegmentSum(napi_env env, napi_callback_info info);
napi_value Conv2d(napi_env env, napi_callback_info info);
napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info);
napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info);

}  // namespace peft_native
