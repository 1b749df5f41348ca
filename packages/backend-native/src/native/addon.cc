// Native kernels of the peft-ts tfjs backend: float32 products through OpenBLAS's cblas_sgemm, and products with
// quantized weights that dequantize one tile at a time into a small buffer, so the float weight never exists whole.
// Every function takes typed arrays the caller allocated (tfjs' own tensor storage) and writes into `out`; shapes are
// checked on the JS side, lengths again here so a wrong call throws instead of reading past an array.
#include "decoder-kernels.h"
#include "gather-conv-kernels.h"
#include "fast-math.h"
#include "fused-kernels.h"
#include "lora-kernels.h"
#include "native-arguments.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace peft_native;

// setThreads(count): OpenBLAS's thread count for every later product, and the element-wise kernels'.
napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!arguments(env, info, argv)) return nullptr;
  elementwiseThreads = static_cast<int>(std::max<int64_t>(1, integer(env, argv[0])));
  openblas_set_num_threads(elementwiseThreads);
  return undefinedValue(env);
}

napi_value Threads(napi_env env, napi_callback_info) {
  napi_value result;
  napi_create_int32(env, openblas_get_num_threads(), &result);
  return result;
}

// batchMatMul(a, b, out, batchA, batchB, m, n, k, transposeA, transposeB): out[i] = op(a[i % batchA])·op(b[i % batchB])
// for i < max(batchA, batchB), tfjs' BatchMatMul semantics; the transposes are BLAS flags, nothing is copied.
napi_value BatchMatMul(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!arguments(env, info, argv)) return nullptr;
  Floats a, b, out;
  if (!floats(env, argv[0], &a, "a must be a Float32Array") || !floats(env, argv[1], &b, "b must be a Float32Array") ||
      !floats(env, argv[2], &out, "out must be a Float32Array")) {
    return nullptr;
  }
  const int64_t batchA = integer(env, argv[3]), batchB = integer(env, argv[4]);
  const int64_t m = integer(env, argv[5]), n = integer(env, argv[6]), k = integer(env, argv[7]);
  const bool transposeA = boolean(env, argv[8]), transposeB = boolean(env, argv[9]);
  const int64_t batch = std::max(batchA, batchB);
  if (batchA < 1 || batchB < 1 || m < 0 || n < 0 || k < 0 || a.length != size_t(batchA * m * k) || b.length != size_t(batchB * k * n) ||
      out.length != size_t(batch * m * n)) {
    fail(env, "batchMatMul: array lengths do not match the shapes");
    return nullptr;
  }
  if (m == 0 || n == 0) return undefinedValue(env);
  if (k == 0) {
    std::fill(out.data, out.data + out.length, 0.0f);
    return undefinedValue(env);
  }
  const int lda = int(transposeA ? m : k), ldb = int(transposeB ? k : n);
  if (batchB == 1 && batchA == batch && !transposeA) {
    // The batch of a is consecutive rows: one product over all of them.
    cblas_sgemm(CblasRowMajor, CblasNoTrans, flag(transposeB), int(batch * m), int(n), int(k), 1.0f, a.data, lda, b.data, ldb, 0.0f, out.data,
                int(n));
    return undefinedValue(env);
  }
  for (int64_t index = 0; index < batch; index++) {
    cblas_sgemm(CblasRowMajor, flag(transposeA), flag(transposeB), int(m), int(n), int(k), 1.0f, a.data + (index % batchA) * m * k, lda,
                b.data + (index % batchB) * k * n, ldb, 0.0f, out.data + index * m * n, int(n));
  }
  return undefinedValue(env);
}

PEFT_VECTOR_CLONES void expArray(const float* x, float* out, size_t count) {
  for (size_t index = 0; index < count; index++) out[index] = fastExp(x[index]);
}

PEFT_VECTOR_CLONES void sigmoidArray(const float* x, float* out, size_t count) {
  for (size_t index = 0; index < count; index++) out[index] = fastSigmoid(x[index]);
}

enum Activation { kLinear = 0, kRelu = 1, kRelu6 = 2, kSigmoidActivation = 3, kLeakyRelu = 4, kElu = 5 };

// biasActivation(out, bias | null, activation, alpha): out += bias (length 1 or the last axis), then the activation,
// in place: the epilogue of _FusedMatMul.
napi_value BiasActivation(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!arguments(env, info, argv)) return nullptr;
  Floats out, bias;
  if (!floats(env, argv[0], &out, "out must be a Float32Array")) return nullptr;
  const bool hasBias = !isNull(env, argv[1]);
  if (hasBias && !floats(env, argv[1], &bias, "bias must be a Float32Array")) return nullptr;
  const int activation = int(integer(env, argv[2]));
  const float alpha = float(number(env, argv[3]));
  if (hasBias && (bias.length == 0 || out.length % bias.length != 0)) {
    fail(env, "biasActivation: the bias length must divide the output's");
    return nullptr;
  }
  float* values = out.data;
  if (hasBias) {
    for (size_t start = 0; start < out.length; start += bias.length) {
      for (size_t index = 0; index < bias.length; index++) values[start + index] += bias.data[index];
    }
  }
  switch (activation) {
    case kLinear:
      break;
    case kRelu:
      for (size_t index = 0; index < out.length; index++) values[index] = values[index] < 0 ? 0 : values[index];
      break;
    case kRelu6:
      for (size_t index = 0; index < out.length; index++) values[index] = std::min(6.0f, std::max(0.0f, values[index]));
      break;
    case kSigmoidActivation:
      sigmoidArray(values, values, out.length);
      break;
    case kLeakyRelu:
      for (size_t index = 0; index < out.length; index++) values[index] = values[index] < 0 ? alpha * values[index] : values[index];
      break;
    case kElu:
      for (size_t index = 0; index < out.length; index++) values[index] = values[index] >= 0 ? values[index] : fastExp(values[index]) - 1.0f;
      break;
    default:
      fail(env, "biasActivation: unknown activation");
      return nullptr;
  }
  return undefinedValue(env);
}

// A quantized [rows, columns] weight whose values can be written out one rectangular tile at a time.
struct QuantizedWeight {
  int64_t rows;
  int64_t columns;
  virtual ~QuantizedWeight() = default;
  // Writes weight[r0:r1, c0:c1] row-major into tile (stride c1 - c0).
  virtual void decode(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* tile) const = 0;
};

// bnb's 4-bit layout: nibble k of the flattened weight is the high nibble of byte k/2 when k is even, the low one when
// odd; its value is the one fp32 product code[nibble] · absmax[k >> blockShift], as bnb's dequantize_4bit.
struct FourBitWeight final : QuantizedWeight {
  const uint8_t* packed;
  const float* absmax;
  const float* code;
  int blockShift;
  void decode(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* tile) const override {
    float pairs[512];
    for (int byte = 0; byte < 256; byte++) {
      pairs[2 * byte] = code[byte >> 4];
      pairs[2 * byte + 1] = code[byte & 15];
    }
    const int64_t width = c1 - c0;
    for (int64_t row = r0; row < r1; row++) {
      float* target = tile + (row - r0) * width;
      int64_t flat = row * columns + c0;
      const int64_t end = row * columns + c1;
      if (flat & 1) {
        *target++ = code[packed[flat >> 1] & 15] * absmax[flat >> blockShift];
        flat++;
      }
      // Whole bytes, both nibbles of a byte always in one block (blocks span at least 64 values).
      while (flat + 1 < end) {
        const int64_t blockEnd = std::min(end & ~int64_t(1), ((flat >> blockShift) + 1) << blockShift);
        const float scale = absmax[flat >> blockShift];
        for (; flat < blockEnd; flat += 2) {
          const float* pair = pairs + 2 * packed[flat >> 1];
          target[0] = pair[0] * scale;
          target[1] = pair[1] * scale;
          target += 2;
        }
      }
      if (flat < end) *target = code[packed[flat >> 1] >> 4] * absmax[flat >> blockShift];
    }
  }
};

// LLM.int8()'s codes, one offset-binary byte each (row-major); with row scales, bnb's int8_vectorwise_dequant
// fp32(fp32(code · scale[row]) · fp32(1/127)), without, the integer code itself.
struct Int8Weight final : QuantizedWeight {
  const uint8_t* codes;
  const float* rowScales;
  int offset;
  void decode(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* tile) const override {
    const float inverse127 = float(1.0 / 127);
    const int64_t width = c1 - c0;
    for (int64_t row = r0; row < r1; row++) {
      const uint8_t* source = codes + row * columns + c0;
      float* target = tile + (row - r0) * width;
      if (rowScales) {
        const float scale = rowScales[row];
        for (int64_t column = 0; column < width; column++) target[column] = (float(int(source[column]) - offset) * scale) * inverse127;
      } else {
        for (int64_t column = 0; column < width; column++) target[column] = float(int(source[column]) - offset);
      }
    }
  }
};

// The inner-dimension slice of one tile: 1024 also keeps int8 products exact (every partial sum of up to 1024 products
// of magnitude ≤ 127² is an integer below 2^24), with the slices added in order as float32 sums.
constexpr int64_t kInnerTile = 1024;
constexpr int64_t kOuterTile = 256;

// out = x·Wᵀ (transposeWeight; x [rows, W.columns]) or x·W (x [rows, W.rows]), one 1 MiB weight tile at a time.
void quantizedProduct(const QuantizedWeight& weight, const float* x, float* out, int64_t rows, bool transposeWeight) {
  const int64_t inner = transposeWeight ? weight.columns : weight.rows;
  const int64_t outer = transposeWeight ? weight.rows : weight.columns;
  if (rows == 0 || outer == 0) return;
  if (inner == 0) {
    std::fill(out, out + rows * outer, 0.0f);
    return;
  }
  std::vector<float> tile(size_t(std::min(inner, kInnerTile) * std::min(outer, kOuterTile)));
  for (int64_t o0 = 0; o0 < outer; o0 += kOuterTile) {
    const int64_t o1 = std::min(outer, o0 + kOuterTile);
    for (int64_t i0 = 0; i0 < inner; i0 += kInnerTile) {
      const int64_t i1 = std::min(inner, i0 + kInnerTile);
      const float beta = i0 == 0 ? 0.0f : 1.0f;
      if (transposeWeight) {
        // Weight rows o0..o1 are output columns, its columns i0..i1 the inner slice: out[:, o] += x[:, i]·tileᵀ.
        weight.decode(o0, o1, i0, i1, tile.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(o1 - o0), int(i1 - i0), 1.0f, x + i0, int(inner), tile.data(),
                    int(i1 - i0), beta, out + o0, int(outer));
      } else {
        weight.decode(i0, i1, o0, o1, tile.data());
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(o1 - o0), int(i1 - i0), 1.0f, x + i0, int(inner), tile.data(),
                    int(o1 - o0), beta, out + o0, int(outer));
      }
    }
  }
}

bool productArrays(napi_env env, napi_value xValue, napi_value outValue, const QuantizedWeight& weight, int64_t rows, bool transposeWeight,
                   Floats* x, Floats* out) {
  if (!floats(env, xValue, x, "x must be a Float32Array") || !floats(env, outValue, out, "out must be a Float32Array")) return false;
  const int64_t inner = transposeWeight ? weight.columns : weight.rows;
  const int64_t outer = transposeWeight ? weight.rows : weight.columns;
  if (rows < 0 || x->length != size_t(rows * inner) || out->length != size_t(rows * outer)) {
    return fail(env, "quantized product: x or out does not match the weight's shape");
  }
  return true;
}

// The weight of (packed, absmax, code, weightRows, weightColumns, blockShift) from argv[0..5].
bool fourBitWeight(napi_env env, napi_value* argv, FourBitWeight* weight) {
  Words packed;
  Floats absmax, code;
  if (!words(env, argv[0], &packed, "packed must be an Int32Array") || !floats(env, argv[1], &absmax, "absmax must be a Float32Array") ||
      !floats(env, argv[2], &code, "code must be a Float32Array")) {
    return false;
  }
  weight->rows = integer(env, argv[3]);
  weight->columns = integer(env, argv[4]);
  weight->blockShift = int(integer(env, argv[5]));
  weight->packed = packed.bytes;
  weight->absmax = absmax.data;
  weight->code = code.data;
  const int64_t count = weight->rows * weight->columns;
  if (weight->rows < 0 || weight->columns < 0 || weight->blockShift < 6 || weight->blockShift > 12 || code.length != 16 ||
      packed.byteLength < size_t((count + 1) / 2) || absmax.length < size_t((count + (int64_t(1) << weight->blockShift) - 1) >> weight->blockShift)) {
    return fail(env, "4-bit weight: packed, absmax or code do not match the weight's shape and blocksize");
  }
  return true;
}

// The weight of int8(packed, rowScales | null, weightRows, weightColumns, offset) from argv[0..4].
bool int8Weight(napi_env env, napi_value* argv, Int8Weight* weight) {
  Words packed;
  Floats scales;
  if (!words(env, argv[0], &packed, "packed must be an Int32Array")) return false;
  const bool scaled = !isNull(env, argv[1]);
  if (scaled && !floats(env, argv[1], &scales, "rowScales must be a Float32Array")) return false;
  weight->rows = integer(env, argv[2]);
  weight->columns = integer(env, argv[3]);
  weight->offset = int(integer(env, argv[4]));
  weight->codes = packed.bytes;
  weight->rowScales = scaled ? scales.data : nullptr;
  if (weight->rows < 0 || weight->columns < 0 || packed.byteLength < size_t(weight->rows * weight->columns) ||
      (scaled && scales.length != size_t(weight->rows))) {
    return fail(env, "int8 weight: packed or rowScales do not match the weight's shape");
  }
  return true;
}

// product(x, out, rows, transposeWeight, ...weight arguments)
template <typename Weight, size_t WeightArguments>
napi_value Product(napi_env env, napi_callback_info info, bool (*parse)(napi_env, napi_value*, Weight*)) {
  napi_value argv[4 + WeightArguments];
  if (!arguments(env, info, argv)) return nullptr;
  Weight weight;
  if (!parse(env, argv + 4, &weight)) return nullptr;
  const int64_t rows = integer(env, argv[2]);
  const bool transposeWeight = boolean(env, argv[3]);
  Floats x, out;
  if (!productArrays(env, argv[0], argv[1], weight, rows, transposeWeight, &x, &out)) return nullptr;
  quantizedProduct(weight, x.data, out.data, rows, transposeWeight);
  return undefinedValue(env);
}

// decode(out, ...weight arguments): the whole float weight, row-major.
template <typename Weight, size_t WeightArguments>
napi_value Decode(napi_env env, napi_callback_info info, bool (*parse)(napi_env, napi_value*, Weight*)) {
  napi_value argv[1 + WeightArguments];
  if (!arguments(env, info, argv)) return nullptr;
  Weight weight;
  if (!parse(env, argv + 1, &weight)) return nullptr;
  Floats out;
  if (!floats(env, argv[0], &out, "out must be a Float32Array")) return nullptr;
  if (out.length != size_t(weight.rows * weight.columns)) {
    fail(env, "decode: out does not match the weight's shape");
    return nullptr;
  }
  weight.decode(0, weight.rows, 0, weight.columns, out.data);
  return undefinedValue(env);
}

napi_value MatMul4bit(napi_env env, napi_callback_info info) { return Product<FourBitWeight, 6>(env, info, fourBitWeight); }
napi_value MatMulInt8(napi_env env, napi_callback_info info) { return Product<Int8Weight, 5>(env, info, int8Weight); }
napi_value Decode4bit(napi_env env, napi_callback_info info) { return Decode<FourBitWeight, 6>(env, info, fourBitWeight); }
napi_value DecodeInt8(napi_env env, napi_callback_info info) { return Decode<Int8Weight, 5>(env, info, int8Weight); }

bool int32s(napi_env env, napi_value value, std::vector<int64_t>* result, const char* what) {
  void* data;
  size_t length;
  if (!typedArray(env, value, napi_int32_array, &data, &length, what)) return false;
  const int32_t* values = static_cast<const int32_t*>(data);
  result->assign(values, values + length);
  return true;
}

enum BinaryOp { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMaximum = 4, kMinimum = 5, kSquaredDifference = 6 };

// Maximum and Minimum propagate NaN, as JS's Math.max/min (tfjs-backend-cpu's) do.
template <int Op>
inline float apply(float a, float b) {
  if constexpr (Op == kAdd) return a + b;
  if constexpr (Op == kSub) return a - b;
  if constexpr (Op == kMul) return a * b;
  if constexpr (Op == kDiv) return a / b;
  if constexpr (Op == kMaximum) return (a != a || b != b) ? NAN : (a > b ? a : b);
  if constexpr (Op == kMinimum) return (a != a || b != b) ? NAN : (a < b ? a : b);
  if constexpr (Op == kSquaredDifference) {
    // In double, rounded once, as JS evaluates (a − b)²; the other ops round the same either way.
    const double difference = double(a) - double(b);
    return float(difference * difference);
  }
}

// out[index] = a[index · aStrides] op b[index · bStrides] over `shape` (a broadcast axis has stride 0): the
// innermost axis runs as a tight loop specialised for contiguous or broadcast operands.
template <int Op>
void binaryLevel(const float* a, const float* b, float* out, const std::vector<int64_t>& shape, const std::vector<int64_t>& aStrides,
                 const std::vector<int64_t>& bStrides, size_t level, int64_t outStride) {
  const int64_t extent = shape[level];
  if (level + 1 == shape.size()) {
    const int64_t sa = aStrides[level], sb = bStrides[level];
    if (sa == 1 && sb == 1) {
      for (int64_t index = 0; index < extent; index++) out[index] = apply<Op>(a[index], b[index]);
    } else if (sa == 1 && sb == 0) {
      const float value = b[0];
      for (int64_t index = 0; index < extent; index++) out[index] = apply<Op>(a[index], value);
    } else if (sa == 0 && sb == 1) {
      const float value = a[0];
      for (int64_t index = 0; index < extent; index++) out[index] = apply<Op>(value, b[index]);
    } else {
      for (int64_t index = 0; index < extent; index++) out[index] = apply<Op>(a[index * sa], b[index * sb]);
    }
    return;
  }
  const int64_t innerSize = outStride / extent;
  for (int64_t index = 0; index < extent; index++) {
    binaryLevel<Op>(a + index * aStrides[level], b + index * bStrides[level], out + index * innerSize, shape, aStrides, bStrides, level + 1, innerSize);
  }
}

// Split across threads along the outermost axis: each range of it is a broadcast of its own.
template <int Op>
void binaryRun(const float* a, const float* b, float* out, const std::vector<int64_t>& shape, const std::vector<int64_t>& aStrides,
               const std::vector<int64_t>& bStrides, int64_t size) {
  if (shape.empty()) {
    out[0] = apply<Op>(a[0], b[0]);
    return;
  }
  const int64_t inner = size / shape[0];
  parallelFor(shape[0], size, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> part(shape);
    part[0] = end - begin;
    if (part[0] > 0) binaryLevel<Op>(a + begin * aStrides[0], b + begin * bStrides[0], out + begin * inner, part, aStrides, bStrides, 0, part[0] * inner);
  });
}

// binary(op, a, b, out, shape, aStrides, bStrides): element-wise float32 with broadcasting (strides in elements).
napi_value Binary(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!arguments(env, info, argv)) return nullptr;
  const int op = int(integer(env, argv[0]));
  Floats a, b, out;
  std::vector<int64_t> shape, aStrides, bStrides;
  if (!floats(env, argv[1], &a, "a must be a Float32Array") || !floats(env, argv[2], &b, "b must be a Float32Array") ||
      !floats(env, argv[3], &out, "out must be a Float32Array") || !int32s(env, argv[4], &shape, "shape must be an Int32Array") ||
      !int32s(env, argv[5], &aStrides, "aStrides must be an Int32Array") || !int32s(env, argv[6], &bStrides, "bStrides must be an Int32Array")) {
    return nullptr;
  }
  int64_t size = 1, aLast = 0, bLast = 0;
  for (size_t axis = 0; axis < shape.size(); axis++) {
    size *= shape[axis];
    if (shape[axis] > 0) {
      aLast += (shape[axis] - 1) * aStrides[axis];
      bLast += (shape[axis] - 1) * bStrides[axis];
    }
  }
  if (aStrides.size() != shape.size() || bStrides.size() != shape.size() || out.length != size_t(size) ||
      (size > 0 && (size_t(aLast) >= a.length || size_t(bLast) >= b.length))) {
    fail(env, "binary: shapes and strides do not match the arrays");
    return nullptr;
  }
  if (size == 0) return undefinedValue(env);
  switch (op) {
    case kAdd: binaryRun<kAdd>(a.data, b.data, out.data, shape, aStrides, bStrides, size); break;
    case kSub: binaryRun<kSub>(a.data, b.data, out.data, shape, aStrides, bStrides, size); break;
    case kMul: binaryRun<kMul>(a.data, b.data, out.data, shape, aStrides, bStrides, size); break;
    case kDiv: binaryRun<kDiv>(a.data, b.data, out.data, shape, aStrides, bStrides, size); break;
    case kMaximum: binaryRun<kMaximum>(a.data, b.data, out.data, shape, aStrides, bStrides, size); break;
    case kMinimum: binaryRun<kMinimum>(a.data, b.data, out.data, shape, aStrides, bStrides, size); break;
    case kSquaredDifference: binaryRun<kSquaredDifference>(a.data, b.data, out.data, shape, aStrides, bStrides, size); break;
    default:
      fail(env, "binary: unknown operation");
      return nullptr;
  }
  return undefinedValue(env);
}

enum UnaryOp { kExp = 0, kNeg = 1, kSqrt = 2, kRsqrt = 3, kSquare = 4, kAbs = 5, kLog = 6, kSigmoid = 7 };

// The double-precision forms tfjs-backend-cpu evaluates with Math.*, rounded to float32 as its typed arrays do; exp
// and sigmoid take the vectorised float32 exp instead (≤ 2 ulp from those).
template <int Op>
void unaryRun(const float* x, float* out, size_t count) {
  if constexpr (Op == kExp) return expArray(x, out, count);
  if constexpr (Op == kSigmoid) return sigmoidArray(x, out, count);
  for (size_t index = 0; index < count; index++) {
    const double value = x[index];
    if constexpr (Op == kNeg) out[index] = -x[index];
    if constexpr (Op == kSqrt) out[index] = float(std::sqrt(value));
    if constexpr (Op == kRsqrt) out[index] = float(1.0 / std::sqrt(value));
    if constexpr (Op == kSquare) out[index] = x[index] * x[index];
    if constexpr (Op == kAbs) out[index] = std::fabs(x[index]);
    if constexpr (Op == kLog) out[index] = float(std::log(value));
  }
}

// unary(op, x, out)
napi_value Unary(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!arguments(env, info, argv)) return nullptr;
  const int op = int(integer(env, argv[0]));
  Floats x, out;
  if (!floats(env, argv[1], &x, "x must be a Float32Array") || !floats(env, argv[2], &out, "out must be a Float32Array")) return nullptr;
  if (x.length != out.length) {
    fail(env, "unary: x and out differ in length");
    return nullptr;
  }
  if (op < kExp || op > kSigmoid) {
    fail(env, "unary: unknown operation");
    return nullptr;
  }
  parallelFor(int64_t(x.length), int64_t(x.length), [&](int64_t begin, int64_t end) {
    const float* source = x.data + begin;
    float* target = out.data + begin;
    const size_t count = size_t(end - begin);
    switch (op) {
      case kExp: unaryRun<kExp>(source, target, count); break;
      case kNeg: unaryRun<kNeg>(source, target, count); break;
      case kSqrt: unaryRun<kSqrt>(source, target, count); break;
      case kRsqrt: unaryRun<kRsqrt>(source, target, count); break;
      case kSquare: unaryRun<kSquare>(source, target, count); break;
      case kAbs: unaryRun<kAbs>(source, target, count); break;
      case kLog: unaryRun<kLog>(source, target, count); break;
      case kSigmoid: unaryRun<kSigmoid>(source, target, count); break;
    }
  });
  return undefinedValue(env);
}

// One softmax row: exp(x − max) with the vectorised exp, the sum accumulated in double (in eight lanes, so it
// vectorises too) and rounded, then one float32 division each, as tfjs-backend-cpu composes it.
PEFT_VECTOR_CLONES void softmaxRow(const float* source, float* target, int64_t columns) {
  float maximum = -INFINITY;
  bool anyNaN = false;
  for (int64_t column = 0; column < columns; column++) {
    maximum = source[column] > maximum ? source[column] : maximum;
    anyNaN |= source[column] != source[column];
  }
  if (anyNaN) maximum = NAN;
  for (int64_t column = 0; column < columns; column++) target[column] = fastExp(source[column] - maximum);
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t column = 0;
  for (; column + 8 <= columns; column += 8) {
    for (int lane = 0; lane < 8; lane++) lanes[lane] += target[column + lane];
  }
  double sum = 0;
  for (; column < columns; column++) sum += target[column];
  for (const double lane : lanes) sum += lane;
  const float total = float(sum);
  for (column = 0; column < columns; column++) target[column] = target[column] / total;
}

// softmax(x, out, rows, columns): over the last axis.
napi_value Softmax(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!arguments(env, info, argv)) return nullptr;
  Floats x, out;
  if (!floats(env, argv[0], &x, "x must be a Float32Array") || !floats(env, argv[1], &out, "out must be a Float32Array")) return nullptr;
  const int64_t rows = integer(env, argv[2]), columns = integer(env, argv[3]);
  if (rows < 0 || columns < 0 || x.length != size_t(rows * columns) || out.length != x.length) {
    fail(env, "softmax: lengths do not match [rows, columns]");
    return nullptr;
  }
  parallelFor(rows, rows * columns, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) softmaxRow(x.data + row * columns, out.data + row * columns, columns);
  });
  return undefinedValue(env);
}

// transpose(x, out, shape, inputStrides): out (row-major in `shape`, the output's) takes x[index · inputStrides];
// 32-bit elements (float32 or int32 bits). The last two axes are copied in 16 × 16 blocks so neither side strides
// through memory element by element.
constexpr int64_t kTransposeBlock = 16;

void transposeLevel(const uint32_t* x, uint32_t* out, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, size_t level,
                    int64_t outStride) {
  const size_t rank = shape.size();
  if (level + 2 == rank) {
    const int64_t rows = shape[level], columns = shape[level + 1];
    const int64_t rowStride = strides[level], columnStride = strides[level + 1];
    for (int64_t row0 = 0; row0 < rows; row0 += kTransposeBlock) {
      const int64_t row1 = std::min(rows, row0 + kTransposeBlock);
      for (int64_t column0 = 0; column0 < columns; column0 += kTransposeBlock) {
        const int64_t column1 = std::min(columns, column0 + kTransposeBlock);
        for (int64_t row = row0; row < row1; row++) {
          const uint32_t* source = x + row * rowStride;
          uint32_t* target = out + row * columns;
          for (int64_t column = column0; column < column1; column++) target[column] = source[column * columnStride];
        }
      }
    }
    return;
  }
  const int64_t extent = shape[level];
  const int64_t innerSize = outStride / extent;
  for (int64_t index = 0; index < extent; index++) {
    transposeLevel(x + index * strides[level], out + index * innerSize, shape, strides, level + 1, innerSize);
  }
}

napi_value Transpose(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!arguments(env, info, argv)) return nullptr;
  void* xData;
  void* outData;
  size_t xLength, outLength;
  napi_typedarray_type xType, outType;
  napi_value buffer;
  size_t offset;
  std::vector<int64_t> shape, strides;
  if (!int32s(env, argv[2], &shape, "shape must be an Int32Array") || !int32s(env, argv[3], &strides, "strides must be an Int32Array")) return nullptr;
  napi_get_typedarray_info(env, argv[0], &xType, &xLength, &xData, &buffer, &offset);
  napi_get_typedarray_info(env, argv[1], &outType, &outLength, &outData, &buffer, &offset);
  const auto wordSized = [](napi_typedarray_type type) { return type == napi_float32_array || type == napi_int32_array || type == napi_uint32_array; };
  int64_t size = 1;
  for (const int64_t extent : shape) size *= extent;
  if (!wordSized(xType) || !wordSized(outType) || strides.size() != shape.size() || outLength != size_t(size) || xLength != outLength) {
    fail(env, "transpose: arrays, shape and strides do not match");
    return nullptr;
  }
  if (size == 0) return undefinedValue(env);
  const uint32_t* x = static_cast<const uint32_t*>(xData);
  uint32_t* out = static_cast<uint32_t*>(outData);
  if (shape.size() < 2) {
    for (int64_t index = 0; index < size; index++) out[index] = x[shape.empty() ? 0 : index * strides[0]];
  } else {
    transposeLevel(x, out, shape, strides, 0, size);
  }
  return undefinedValue(env);
}

enum ReduceOp { kSum = 0, kMean = 1, kMax = 2, kMin = 3 };

// One output of a reduction: the elements at base + the reduced axes' strides, in row-major order of those axes
// (the order tfjs-backend-cpu sums them in after moving them innermost), accumulated in double as JS does.
template <int Op>
float reduceOne(const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, float divisor) {
  const size_t rank = shape.size();
  std::vector<int64_t> index(rank, 0);
  const int64_t innerExtent = rank ? shape[rank - 1] : 1;
  const int64_t innerStride = rank ? strides[rank - 1] : 0;
  double sum = 0;
  float extreme = x[0];
  const float* row = x;
  while (true) {
    for (int64_t inner = 0; inner < innerExtent; inner++) {
      const float value = row[inner * innerStride];
      if constexpr (Op == kSum) sum += value;
      if constexpr (Op == kMean) sum += float(double(value) / divisor);
      if constexpr (Op == kMax) if (value > extreme || value != value) extreme = value;
      if constexpr (Op == kMin) if (value < extreme || value != value) extreme = value;
    }
    // The next run of the innermost reduced axis.
    size_t axis = rank < 2 ? 0 : rank - 2;
    if (rank < 2) break;
    while (true) {
      row += strides[axis];
      if (++index[axis] < shape[axis]) break;
      row -= strides[axis] * shape[axis];
      index[axis] = 0;
      if (axis == 0) {
        axis = rank;
        break;
      }
      axis--;
    }
    if (axis == rank) break;
  }
  if constexpr (Op == kSum || Op == kMean) return float(sum);
  return extreme;
}

template <int Op>
void reduceAll(const float* x, float* out, const std::vector<int64_t>& keptShape, const std::vector<int64_t>& keptStrides,
               const std::vector<int64_t>& reducedShape, const std::vector<int64_t>& reducedStrides, int64_t outputs, float divisor) {
  std::vector<int64_t> index(keptShape.size(), 0);
  int64_t offset = 0;
  for (int64_t output = 0; output < outputs; output++) {
    out[output] = reduceOne<Op>(x + offset, reducedShape, reducedStrides, divisor);
    for (size_t axis = keptShape.size(); axis-- > 0;) {
      offset += keptStrides[axis];
      if (++index[axis] < keptShape[axis]) break;
      offset -= keptStrides[axis] * keptShape[axis];
      index[axis] = 0;
    }
  }
}

// Whether x is [reduced, outputs] in row-major order: the reduced axes lead and the kept ones follow contiguously
// (a bias or magnitude gradient summed over batch and sequence).
bool leadingReduction(const std::vector<int64_t>& keptShape, const std::vector<int64_t>& keptStrides, const std::vector<int64_t>& reducedShape,
                      const std::vector<int64_t>& reducedStrides, int64_t outputs) {
  int64_t expected = 1;
  for (size_t axis = keptShape.size(); axis-- > 0;) {
    if (keptShape[axis] > 1 && keptStrides[axis] != expected) return false;
    expected *= keptShape[axis];
  }
  expected = outputs;
  for (size_t axis = reducedShape.size(); axis-- > 0;) {
    if (reducedShape[axis] > 1 && reducedStrides[axis] != expected) return false;
    expected *= reducedShape[axis];
  }
  return true;
}

// The same values as reduceOne over a leading reduction, visiting rows in the same order, but a row at a time so
// the reads are sequential; the columns are split over the threads.
template <int Op>
void reduceLeading(const float* x, float* out, int64_t rows, int64_t outputs, float divisor) {
  parallelFor(outputs, rows * outputs, [&](int64_t begin, int64_t end) {
    const int64_t width = end - begin;
    if constexpr (Op == kSum || Op == kMean) {
      std::vector<double> sums(size_t(width), 0.0);
      for (int64_t row = 0; row < rows; row++) {
        const float* values = x + row * outputs + begin;
        for (int64_t column = 0; column < width; column++) {
          if constexpr (Op == kSum) sums[size_t(column)] += values[column];
          if constexpr (Op == kMean) sums[size_t(column)] += float(double(values[column]) / divisor);
        }
      }
      for (int64_t column = 0; column < width; column++) out[begin + column] = float(sums[size_t(column)]);
    } else {
      std::copy(x + begin, x + end, out + begin);
      for (int64_t row = 1; row < rows; row++) {
        const float* values = x + row * outputs + begin;
        for (int64_t column = 0; column < width; column++) {
          const float value = values[column];
          float& extreme = out[begin + column];
          if constexpr (Op == kMax) if (value > extreme || value != value) extreme = value;
          if constexpr (Op == kMin) if (value < extreme || value != value) extreme = value;
        }
      }
    }
  });
}

// reduce(op, x, out, keptShape, keptStrides, reducedShape, reducedStrides): float32 Sum/Mean/Max/Min over the
// reduced axes (at least one element each), read through strides, so no axis is moved first.
napi_value Reduce(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!arguments(env, info, argv)) return nullptr;
  const int op = int(integer(env, argv[0]));
  Floats x, out;
  std::vector<int64_t> keptShape, keptStrides, reducedShape, reducedStrides;
  if (!floats(env, argv[1], &x, "x must be a Float32Array") || !floats(env, argv[2], &out, "out must be a Float32Array") ||
      !int32s(env, argv[3], &keptShape, "keptShape must be an Int32Array") || !int32s(env, argv[4], &keptStrides, "keptStrides must be an Int32Array") ||
      !int32s(env, argv[5], &reducedShape, "reducedShape must be an Int32Array") ||
      !int32s(env, argv[6], &reducedStrides, "reducedStrides must be an Int32Array")) {
    return nullptr;
  }
  int64_t outputs = 1, reduced = 1;
  for (const int64_t extent : keptShape) outputs *= extent;
  for (const int64_t extent : reducedShape) reduced *= extent;
  if (keptStrides.size() != keptShape.size() || reducedStrides.size() != reducedShape.size() || out.length != size_t(outputs) ||
      x.length != size_t(outputs * reduced) || reduced == 0) {
    fail(env, "reduce: shapes and strides do not match the arrays");
    return nullptr;
  }
  const float divisor = float(reduced);
  if (outputs > 1 && leadingReduction(keptShape, keptStrides, reducedShape, reducedStrides, outputs)) {
    switch (op) {
      case kSum: reduceLeading<kSum>(x.data, out.data, reduced, outputs, divisor); return undefinedValue(env);
      case kMean: reduceLeading<kMean>(x.data, out.data, reduced, outputs, divisor); return undefinedValue(env);
      case kMax: reduceLeading<kMax>(x.data, out.data, reduced, outputs, divisor); return undefinedValue(env);
      case kMin: reduceLeading<kMin>(x.data, out.data, reduced, outputs, divisor); return undefinedValue(env);
      default: break;
    }
  }
  switch (op) {
    case kSum: reduceAll<kSum>(x.data, out.data, keptShape, keptStrides, reducedShape, reducedStrides, outputs, divisor); break;
    case kMean: reduceAll<kMean>(x.data, out.data, keptShape, keptStrides, reducedShape, reducedStrides, outputs, divisor); break;
    case kMax: reduceAll<kMax>(x.data, out.data, keptShape, keptStrides, reducedShape, reducedStrides, outputs, divisor); break;
    case kMin: reduceAll<kMin>(x.data, out.data, keptShape, keptStrides, reducedShape, reducedStrides, outputs, divisor); break;
    default:
      fail(env, "reduce: unknown operation");
      return nullptr;
  }
  return undefinedValue(env);
}

napi_value Init(napi_env env, napi_value exports) {
  const std::pair<const char*, napi_callback> functions[] = {
      {"setThreads", SetThreads},
      {"threads", Threads},
      {"batchMatMul", BatchMatMul},
      {"biasActivation", BiasActivation},
      {"matMul4bit", MatMul4bit},
      {"matMulInt8", MatMulInt8},
      {"decode4bit", Decode4bit},
      {"decodeInt8", DecodeInt8},
      {"binary", Binary},
      {"unary", Unary},
      {"softmax", Softmax},
      {"transpose", Transpose},
      {"reduce", Reduce},
      {"gather", Gather},
      {"segmentSum", SegmentSum},
      {"conv2d", Conv2d},
      {"conv2dBackpropInput", Conv2dBackpropInput},
      {"conv2dBackpropFilter", Conv2dBackpropFilter},
      {"rmsNorm", RmsNorm},
      {"rmsNormGrad", RmsNormGrad},
      {"swiGlu", SwiGlu},
      {"swiGluGrad", SwiGluGrad},
      {"loraLinear", LoraLinear},
      {"loraLinearGrad", LoraLinearGrad},
      {"lowRankRowNorms", LowRankRowNorms},
      {"crossEntropy", CrossEntropy}, {"crossEntropyGrad", CrossEntropyGrad}, {"rotary", Rotary}, {"maskedSoftmax", MaskedSoftmax}, {"maskedSoftmaxGrad", MaskedSoftmaxGrad},
      {"attention", Attention}, {"attentionGrad", AttentionGrad},
  };
  for (const auto& [name, callback] : functions) {
    napi_value function;
    napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &function);
    napi_set_named_property(env, exports, name, function);
  }
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
