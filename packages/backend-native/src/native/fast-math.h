// A float32 exp the compiler vectorises (no libm call in the loop), for the kernels whose time is exp: softmax,
// sigmoid, exp. Cody–Waite range reduction x = n·ln2 + r (|r| ≤ ln2/2, ln2 split in two so n·ln2 is exact) and a
// degree-6 polynomial for e^r (Cephes' expf coefficients), ≤ 2 ulp from the correctly rounded value; 2^n is applied as
// two power-of-two factors so results that underflow to subnormals round once, as std::exp's do.
#pragma once

#include <cstdint>
#include <cstring>

// Loops over whole arrays are compiled twice on x86-64 Linux, for AVX2 + FMA and for the baseline, and the loader
// picks one by the CPU it runs on; elsewhere they are compiled once for the build's target. The AVX2 clone names the
// x86-64-v3 ISA level, which is picked by the features a CPU has: `arch=haswell` is picked only on CPUs that identify
// as Haswell, so never on AMD's or on later Intel cores. GCC names ISA levels from version 12; older compilers and
// clang get an AVX2 clone without FMA.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define PEFT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define PEFT_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PEFT_VECTOR_CLONES
#endif

// Inlined into each clone, so each compiles it for its own target (GCC otherwise calls the baseline copy).
#if defined(__GNUC__)
#define PEFT_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define PEFT_ALWAYS_INLINE inline
#endif

namespace peft_native {

PEFT_ALWAYS_INLINE float bitsToFloat(int32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

PEFT_ALWAYS_INLINE float fastExp(float x) {
  // Beyond these e^x is +Inf or rounds to 0 in float32; clamping keeps n within the two factors' range.
  const float clamped = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  // Round to nearest by adding 1.5·2^23 (exact for |value| < 2^22).
  const float shifter = 12582912.0f;
  const float n = (clamped * 1.44269504088896341f + shifter) - shifter;
  float r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float expR = (p * r) * r + r + 1.0f;
  const int32_t exponent = int32_t(n);
  const int32_t half = exponent / 2;
  const float result = expR * bitsToFloat((half + 127) << 23) * bitsToFloat((exponent - half + 127) << 23);
  // NaN stays NaN (the clamp above would have turned it into a number).
  return x != x ? x : result;
}

// 1/(1 + e^−x), as e^x/(1 + e^x) for x < 0 so e^−|x| never overflows: tiny results keep their precision.
PEFT_ALWAYS_INLINE float fastSigmoid(float x) {
  const float e = fastExp(x < 0 ? x : -x);
  return (x < 0 ? e : 1.0f) / (1.0f + e);
}

}  // namespace peft_native
