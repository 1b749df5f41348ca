{
  "targets": [
    {
      "target_name": "peft_native",
      "sources": ["src/native/addon.cc", "src/native/gather-kernels.cc", "src/native/conv-kernels.cc", "src/native/fused-kernels.cc", "src/native/lora-kernels.cc", "src/native/decoder-kernels.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions", "-fno-trapping-math"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
