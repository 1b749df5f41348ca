#include "lora-kernels.h"

#include "native-arguments.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace peft_native {

namespace {

// [rows, inFeatures] → [rows, outFeatures] with a rank-`rank` adapter, every array row-major.
struct LoraShape {
  int64_t rows, inFeatures, outFeatures, rank;
};

bool readShape(napi_env env, napi_value* argv, LoraShape* shape) {
  *shape = {integer(env, argv[0]), integer(env, argv[1]), integer(env, argv[2]), integer(env, argv[3])};
  if (shape->rows < 0 || shape->inFeatures < 1 || shape->outFeatures < 1 || shape->rank < 1) {
    return fail(env, "lora: rows must be >= 0 and inFeatures, outFeatures and rank >= 1");
  }
  return true;
}

bool hasLength(const Floats& array, int64_t first, int64_t second) { return array.length == size_t(first * second); }

}  // namespace

// loraLinear(x, dropped | null, weight, bias | null, loraA, loraB, out, down, rows, inFeatures, outFeatures, rank, scaling):
// out = x·Wᵀ (+ bias) + scaling·down·Bᵀ with down = dropped·Aᵀ (dropped = x when null). x, dropped [rows, in];
// weight [out, in]; bias [out]; loraA [rank, in]; loraB [out, rank]; out [rows, out]; down [rows, rank].
napi_value LoraLinear(napi_env env, napi_callback_info info) {
  napi_value argv[13];
  if (!arguments(env, info, argv)) return nullptr;
  Floats x, dropped, weight, bias, a, b, out, down;
  if (!floats(env, argv[0], &x, "x must be a Float32Array") || !floats(env, argv[2], &weight, "weight must be a Float32Array") ||
      !floats(env, argv[4], &a, "loraA must be a Float32Array") || !floats(env, argv[5], &b, "loraB must be a Float32Array") ||
      !floats(env, argv[6], &out, "out must be a Float32Array") || !floats(env, argv[7], &down, "down must be a Float32Array")) {
    return nullptr;
  }
  dropped = x;
  if (!isNull(env, argv[1]) && !floats(env, argv[1], &dropped, "dropped must be a Float32Array")) return nullptr;
  const bool withBias = !isNull(env, argv[3]);
  if (withBias && !floats(env, argv[3], &bias, "bias must be a Float32Array")) return nullptr;
  LoraShape shape;
  if (!readShape(env, argv + 8, &shape)) return nullptr;
  const auto [rows, in, outFeatures, rank] = shape;
  const float scaling = float(number(env, argv[12]));
  if (!hasLength(x, rows, in) || dropped.length != x.length || !hasLength(weight, outFeatures, in) || (withBias && bias.length != size_t(outFeatures)) ||
      !hasLength(a, rank, in) || !hasLength(b, outFeatures, rank) || !hasLength(out, rows, outFeatures) || !hasLength(down, rows, rank)) {
    fail(env, "loraLinear: array lengths do not match [rows, inFeatures, outFeatures, rank]");
    return nullptr;
  }
  if (rows == 0) return undefinedValue(env);
  if (withBias) {
    for (int64_t row = 0; row < rows; row++) std::memcpy(out.data + row * outFeatures, bias.data, size_t(outFeatures) * sizeof(float));
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(outFeatures), int(in), 1.0f, x.data, int(in), weight.data, int(in),
              withBias ? 1.0f : 0.0f, out.data, int(outFeatures));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(rank), int(in), 1.0f, dropped.data, int(in), a.data, int(in), 0.0f,
              down.data, int(rank));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(outFeatures), int(rank), scaling, down.data, int(rank), b.data,
              int(rank), 1.0f, out.data, int(outFeatures));
  return undefinedValue(env);
}

// loraLinearGrad(dy, weight, loraA, loraB, down, dropped, dx, dDropped | null, dA, dB, rows, inFeatures, outFeatures, rank, scaling),
// for a frozen weight: with g = dy·B, dx = dy·W plus scaling·g·A (into dDropped instead when given: the branch's input
// came from a dropout), dA = scaling·gᵀ·dropped, dB = scaling·dyᵀ·down.
napi_value LoraLinearGrad(napi_env env, napi_callback_info info) {
  napi_value argv[15];
  if (!arguments(env, info, argv)) return nullptr;
  Floats dy, weight, a, b, down, dropped, dx, dDropped, dA, dB;
  if (!floats(env, argv[0], &dy, "dy must be a Float32Array") || !floats(env, argv[1], &weight, "weight must be a Float32Array") ||
      !floats(env, argv[2], &a, "loraA must be a Float32Array") || !floats(env, argv[3], &b, "loraB must be a Float32Array") ||
      !floats(env, argv[4], &down, "down must be a Float32Array") || !floats(env, argv[5], &dropped, "dropped must be a Float32Array") ||
      !floats(env, argv[6], &dx, "dx must be a Float32Array") || !floats(env, argv[8], &dA, "dA must be a Float32Array") ||
      !floats(env, argv[9], &dB, "dB must be a Float32Array")) {
    return nullptr;
  }
  const bool separate = !isNull(env, argv[7]);
  if (separate && !floats(env, argv[7], &dDropped, "dDropped must be a Float32Array")) return nullptr;
  LoraShape shape;
  if (!readShape(env, argv + 10, &shape)) return nullptr;
  const auto [rows, in, outFeatures, rank] = shape;
  const float scaling = float(number(env, argv[14]));
  if (!hasLength(dy, rows, outFeatures) || !hasLength(weight, outFeatures, in) || !hasLength(a, rank, in) || !hasLength(b, outFeatures, rank) ||
      !hasLength(down, rows, rank) || !hasLength(dropped, rows, in) || !hasLength(dx, rows, in) || (separate && !hasLength(dDropped, rows, in)) ||
      !hasLength(dA, rank, in) || !hasLength(dB, outFeatures, rank)) {
    fail(env, "loraLinearGrad: array lengths do not match [rows, inFeatures, outFeatures, rank]");
    return nullptr;
  }
  if (rows == 0) {
    // Sums over no rows: sgemm with k = 0 is not guaranteed to write its output.
    std::fill(dA.data, dA.data + dA.length, 0.0f);
    std::fill(dB.data, dB.data + dB.length, 0.0f);
    return undefinedValue(env);
  }
  std::vector<float> g(size_t(rows * rank));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(in), int(outFeatures), 1.0f, dy.data, int(outFeatures), weight.data,
              int(in), 0.0f, dx.data, int(in));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(rank), int(outFeatures), 1.0f, dy.data, int(outFeatures), b.data,
              int(rank), 0.0f, g.data(), int(rank));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(in), int(rank), scaling, g.data(), int(rank), a.data, int(in),
              separate ? 0.0f : 1.0f, separate ? dDropped.data : dx.data, int(in));
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(rank), int(in), int(rows), scaling, g.data(), int(rank), dropped.data, int(in), 0.0f,
              dA.data, int(in));
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(outFeatures), int(rank), int(rows), scaling, dy.data, int(outFeatures), down.data,
              int(rank), 0.0f, dB.data, int(rank));
  return undefinedValue(env);
}

// Rows of ‖W + scaling·B·A‖ per block: the block of W + ΔW exists only as this many rows at a time.
constexpr int64_t kNormRowBlock = 16;

// lowRankRowNorms(weight, left, right, norms, rows, columns, rank, scaling): norms[i] = ‖weight[i] + scaling·left[i]·right‖
// (DoRA's weight norm), weight [rows, columns], left [rows, rank], right [rank, columns], the squares summed in double.
napi_value LowRankRowNorms(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!arguments(env, info, argv)) return nullptr;
  Floats weight, left, right, norms;
  if (!floats(env, argv[0], &weight, "weight must be a Float32Array") || !floats(env, argv[1], &left, "left must be a Float32Array") ||
      !floats(env, argv[2], &right, "right must be a Float32Array") || !floats(env, argv[3], &norms, "norms must be a Float32Array")) {
    return nullptr;
  }
  const int64_t rows = integer(env, argv[4]), columns = integer(env, argv[5]), rank = integer(env, argv[6]);
  const float scaling = float(number(env, argv[7]));
  if (rows < 0 || columns < 1 || rank < 1 || !hasLength(weight, rows, columns) || !hasLength(left, rows, rank) || !hasLength(right, rank, columns) ||
      norms.length != size_t(rows)) {
    fail(env, "lowRankRowNorms: lengths do not match weight [rows, columns], left [rows, rank], right [rank, columns] and norms [rows]");
    return nullptr;
  }
  const int64_t blocks = (rows + kNormRowBlock - 1) / kNormRowBlock;
  parallelProducts(blocks, [&](int64_t firstBlock, int64_t endBlock) {
    std::vector<float> tile(size_t(kNormRowBlock * columns));
    for (int64_t block = firstBlock; block < endBlock; block++) {
      const int64_t first = block * kNormRowBlock, count = std::min(rows - first, kNormRowBlock);
      std::memcpy(tile.data(), weight.data + first * columns, size_t(count * columns) * sizeof(float));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(count), int(columns), int(rank), scaling, left.data + first * rank, int(rank), right.data,
                  int(columns), 1.0f, tile.data(), int(columns));
      for (int64_t row = 0; row < count; row++) {
        const float* values = tile.data() + row * columns;
        double squares = 0;
        for (int64_t column = 0; column < columns; column++) squares += double(values[column]) * values[column];
        norms.data[first + row] = float(std::sqrt(squares));
      }
    }
  });
  return undefinedValue(env);
}

}  // namespace peft_native
