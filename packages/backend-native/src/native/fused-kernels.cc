#include "fused-kernels.h"

#include "fast-math.h"
#include "native-arguments.h"

#include <cmath>
#include <vector>

namespace peft_native {

namespace {

// One RMSNorm row: inverse = (mean(x²) + eps)^−½ (the sum in double), out = weight · (x · inverse).
PEFT_VECTOR_CLONES void rmsNormRow(const float* x, const float* weight, float* out, float* inverse, int64_t columns, float eps) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t column = 0;
  for (; column + 8 <= columns; column += 8) {
    for (int lane = 0; lane < 8; lane++) lanes[lane] += double(x[column + lane]) * x[column + lane];
  }
  double sum = 0;
  for (; column < columns; column++) sum += double(x[column]) * x[column];
  for (const double lane : lanes) sum += lane;
  const float scale = float(1.0 / std::sqrt(double(float(sum / double(columns)) + eps)));
  *inverse = scale;
  for (column = 0; column < columns; column++) out[column] = weight[column] * (x[column] * scale);
}

// dx = r·g − x·r³·mean(g·x), g = dy·weight, for one row.
PEFT_VECTOR_CLONES void rmsNormGradRow(const float* dy, const float* x, const float* weight, float inverse, float* dx, int64_t columns) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t column = 0;
  for (; column + 8 <= columns; column += 8) {
    for (int lane = 0; lane < 8; lane++) lanes[lane] += double(dy[column + lane] * weight[column + lane]) * x[column + lane];
  }
  double sum = 0;
  for (; column < columns; column++) sum += double(dy[column] * weight[column]) * x[column];
  for (const double lane : lanes) sum += lane;
  const float correction = inverse * inverse * inverse * float(sum / double(columns));
  for (column = 0; column < columns; column++) dx[column] = dy[column] * weight[column] * inverse - x[column] * correction;
}

PEFT_VECTOR_CLONES void swiGluRange(const float* gate, const float* up, float* out, int64_t count) {
  for (int64_t index = 0; index < count; index++) out[index] = gate[index] * fastSigmoid(gate[index]) * up[index];
}

// d gate = dy·up·σ(g)·(1 + g·(1 − σ(g))), d up = dy·g·σ(g).
PEFT_VECTOR_CLONES void swiGluGradRange(const float* dy, const float* gate, const float* up, float* dGate, float* dUp, int64_t count) {
  for (int64_t index = 0; index < count; index++) {
    const float g = gate[index], sigmoid = fastSigmoid(g);
    dGate[index] = dy[index] * up[index] * (sigmoid * (1.0f + g * (1.0f - sigmoid)));
    dUp[index] = dy[index] * (g * sigmoid);
  }
}

}  // namespace

// rmsNorm(x, weight, out, inverse, rows, columns, eps): x and out [rows, columns], weight [columns], inverse [rows].
napi_value RmsNorm(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!arguments(env, info, argv)) return nullptr;
  Floats x, weight, out, inverse;
  if (!floats(env, argv[0], &x, "x must be a Float32Array") || !floats(env, argv[1], &weight, "weight must be a Float32Array") ||
      !floats(env, argv[2], &out, "out must be a Float32Array") || !floats(env, argv[3], &inverse, "inverse must be a Float32Array")) {
    return nullptr;
  }
  const int64_t rows = integer(env, argv[4]), columns = integer(env, argv[5]);
  const float eps = float(number(env, argv[6]));
  if (rows < 0 || columns < 1 || x.length != size_t(rows * columns) || out.length != x.length || weight.length != size_t(columns) ||
      inverse.length != size_t(rows)) {
    fail(env, "rmsNorm: lengths do not match [rows, columns]");
    return nullptr;
  }
  parallelFor(rows, rows * columns, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) rmsNormRow(x.data + row * columns, weight.data, out.data + row * columns, inverse.data + row, columns, eps);
  });
  return undefinedValue(env);
}

// rmsNormGrad(dy, x, inverse, weight, dx, dWeight | null, rows, columns): dWeight = Σ_rows dy·x·inverse (in double).
napi_value RmsNormGrad(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!arguments(env, info, argv)) return nullptr;
  Floats dy, x, inverse, weight, dx, dWeight;
  if (!floats(env, argv[0], &dy, "dy must be a Float32Array") || !floats(env, argv[1], &x, "x must be a Float32Array") ||
      !floats(env, argv[2], &inverse, "inverse must be a Float32Array") || !floats(env, argv[3], &weight, "weight must be a Float32Array") ||
      !floats(env, argv[4], &dx, "dx must be a Float32Array")) {
    return nullptr;
  }
  const bool withWeight = !isNull(env, argv[5]);
  if (withWeight && !floats(env, argv[5], &dWeight, "dWeight must be a Float32Array")) return nullptr;
  const int64_t rows = integer(env, argv[6]), columns = integer(env, argv[7]);
  if (rows < 0 || columns < 1 || x.length != size_t(rows * columns) || dy.length != x.length || dx.length != x.length ||
      weight.length != size_t(columns) || inverse.length != size_t(rows) || (withWeight && dWeight.length != size_t(columns))) {
    fail(env, "rmsNormGrad: lengths do not match [rows, columns]");
    return nullptr;
  }
  parallelFor(rows, rows * columns, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      rmsNormGradRow(dy.data + row * columns, x.data + row * columns, weight.data, inverse.data[row], dx.data + row * columns, columns);
    }
  });
  if (withWeight) {
    // Split over columns, so every thread sums its columns over all rows in the same order.
    parallelFor(columns, rows * columns, [&](int64_t begin, int64_t end) {
      std::vector<double> sums(size_t(end - begin), 0.0);
      for (int64_t row = 0; row < rows; row++) {
        const float* dyRow = dy.data + row * columns;
        const float* xRow = x.data + row * columns;
        const float scale = inverse.data[row];
        for (int64_t column = begin; column < end; column++) sums[size_t(column - begin)] += dyRow[column] * (xRow[column] * scale);
      }
      for (int64_t column = begin; column < end; column++) dWeight.data[column] = float(sums[size_t(column - begin)]);
    });
  }
  return undefinedValue(env);
}

// swiGlu(gate, up, out): out = gate · σ(gate) · up, all of one length.
napi_value SwiGlu(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!arguments(env, info, argv)) return nullptr;
  Floats gate, up, out;
  if (!floats(env, argv[0], &gate, "gate must be a Float32Array") || !floats(env, argv[1], &up, "up must be a Float32Array") ||
      !floats(env, argv[2], &out, "out must be a Float32Array")) {
    return nullptr;
  }
  if (up.length != gate.length || out.length != gate.length) {
    fail(env, "swiGlu: gate, up and out differ in length");
    return nullptr;
  }
  const int64_t count = int64_t(gate.length);
  parallelFor(count, count, [&](int64_t begin, int64_t end) { swiGluRange(gate.data + begin, up.data + begin, out.data + begin, end - begin); });
  return undefinedValue(env);
}

// swiGluGrad(dy, gate, up, dGate, dUp)
napi_value SwiGluGrad(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!arguments(env, info, argv)) return nullptr;
  Floats dy, gate, up, dGate, dUp;
  if (!floats(env, argv[0], &dy, "dy must be a Float32Array") || !floats(env, argv[1], &gate, "gate must be a Float32Array") ||
      !floats(env, argv[2], &up, "up must be a Float32Array") || !floats(env, argv[3], &dGate, "dGate must be a Float32Array") ||
      !floats(env, argv[4], &dUp, "dUp must be a Float32Array")) {
    return nullptr;
  }
  if (gate.length != dy.length || up.length != dy.length || dGate.length != dy.length || dUp.length != dy.length) {
    fail(env, "swiGluGrad: dy, gate, up, dGate and dUp differ in length");
    return nullptr;
  }
  const int64_t count = int64_t(dy.length);
  parallelFor(count, count, [&](int64_t begin, int64_t end) {
    swiGluGradRange(dy.data + begin, gate.data + begin, up.data + begin, dGate.data + begin, dUp.data + begin, end - begin);
  });
  return undefinedValue(env);
}

}  // namespace peft_native
