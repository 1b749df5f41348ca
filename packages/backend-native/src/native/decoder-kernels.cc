#include "decoder-kernels.h"

#include "fast-math.h"
#include "native-arguments.h"

#include <cmath>
#include <vector>

namespace peft_native {

namespace {

// Label value excluded from the loss (PyTorch CrossEntropyLoss's default ignore_index).
constexpr int32_t kIgnoreIndex = -100;

bool int32s(napi_env env, napi_value value, const int32_t** data, size_t* length, const char* what) {
  void* raw;
  if (!typedArray(env, value, napi_int32_array, &raw, length, what)) return false;
  *data = static_cast<const int32_t*>(raw);
  return true;
}

napi_value numberValue(napi_env env, double value) {
  napi_value result;
  napi_create_double(env, value, &result);
  return result;
}

// Eight double lanes, so the sum vectorises and rounds far less than a float32 running sum.
PEFT_ALWAYS_INLINE double sumInDouble(const float* values, int64_t count) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t index = 0;
  for (; index + 8 <= count; index += 8) {
    for (int lane = 0; lane < 8; lane++) lanes[lane] += values[index + lane];
  }
  double sum = 0;
  for (; index < count; index++) sum += values[index];
  for (const double lane : lanes) sum += lane;
  return sum;
}

// The row's maximum, NaN when any value is NaN (as softmax propagates it).
PEFT_ALWAYS_INLINE float rowMaximum(const float* values, int64_t count) {
  float maximum = -INFINITY;
  bool anyNaN = false;
  for (int64_t index = 0; index < count; index++) {
    maximum = values[index] > maximum ? values[index] : maximum;
    anyNaN |= values[index] != values[index];
  }
  return anyNaN ? NAN : maximum;
}

// log Σ exp(x) of one row, as max + log Σ exp(x − max); `scratch` receives the exponentials.
PEFT_VECTOR_CLONES double logSumExpRow(const float* x, float* scratch, int64_t columns) {
  const float maximum = rowMaximum(x, columns);
  for (int64_t column = 0; column < columns; column++) scratch[column] = fastExp(x[column] - maximum);
  return double(maximum) + std::log(sumInDouble(scratch, columns));
}

// (softmax(x) − onehot(target))·scale from the row's saved log Σ exp.
PEFT_VECTOR_CLONES void crossEntropyGradRow(const float* x, float logSumExp, int32_t target, float scale, float* dx, int64_t columns) {
  for (int64_t column = 0; column < columns; column++) dx[column] = fastExp(x[column] - logSumExp) * scale;
  dx[target] -= scale;
}

// One position's heads: out = x·cos + swapHalves(x)·sin (sin carries rotate_half's sign), or with `transposed` the
// gradient dy·cos + swapHalves(dy·sin): a product by the transposed rotation.
PEFT_VECTOR_CLONES void rotaryRow(const float* x, const float* cos, const float* sin, float* out, int64_t heads, int64_t half, bool transposed) {
  const float *cosFirst = cos, *cosSecond = cos + half;
  // The forward multiplies each swapped half by this half's sin, the gradient by the other half's.
  const float* sinForFirst = transposed ? sin + half : sin;
  const float* sinForSecond = transposed ? sin : sin + half;
  for (int64_t head = 0; head < heads; head++) {
    const float* first = x + head * 2 * half;
    const float* second = first + half;
    float* outFirst = out + head * 2 * half;
    float* outSecond = outFirst + half;
    for (int64_t index = 0; index < half; index++) {
      outFirst[index] = first[index] * cosFirst[index] + second[index] * sinForFirst[index];
      outSecond[index] = second[index] * cosSecond[index] + first[index] * sinForSecond[index];
    }
  }
}

// softmax(scores / scale + mask) of one row (mask null: none), the row max subtracted before the exponentials.
PEFT_VECTOR_CLONES void maskedSoftmaxRow(const float* scores, const float* mask, float scale, float* out, int64_t columns) {
  if (mask) {
    for (int64_t column = 0; column < columns; column++) out[column] = scores[column] / scale + mask[column];
  } else {
    for (int64_t column = 0; column < columns; column++) out[column] = scores[column] / scale;
  }
  const float maximum = rowMaximum(out, columns);
  for (int64_t column = 0; column < columns; column++) out[column] = fastExp(out[column] - maximum);
  const float total = float(sumInDouble(out, columns));
  for (int64_t column = 0; column < columns; column++) out[column] = out[column] / total;
}

// P·(dy − Σ dy·P) / scale of one row.
PEFT_VECTOR_CLONES void maskedSoftmaxGradRow(const float* dy, const float* probabilities, float scale, float* dx, int64_t columns) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t column = 0;
  for (; column + 8 <= columns; column += 8) {
    for (int lane = 0; lane < 8; lane++) lanes[lane] += double(dy[column + lane]) * probabilities[column + lane];
  }
  double sum = 0;
  for (; column < columns; column++) sum += double(dy[column]) * probabilities[column];
  for (const double lane : lanes) sum += lane;
  const float dot = float(sum);
  for (column = 0; column < columns; column++) dx[column] = probabilities[column] * (dy[column] - dot) / scale;
}


// Additive mask entries at or below this hide their key: next to any visible key exp(score + entry − max) is 0 in
// float32, so those columns can be skipped. A row with no visible key keeps every column (the softmax of equal
// values is uniform, what transformers gives a padding query).
constexpr float kHiddenBelow = -1e30f;
// Query rows per block of the attention products: small enough that a causal mask skips most hidden keys, large
// enough for sgemm to run near its peak.
constexpr int64_t kAttentionRowBlock = 64;

// The shapes of one attention call: query heads are grouped per key-value head ([batch, kvHeads, groups·length, d]).
struct AttentionLayout {
  int64_t batch, kvHeads, groups, length, keys, dimension, maskBatch;
  int64_t blocksPerHead() const { return (length + kAttentionRowBlock - 1) / kAttentionRowBlock; }
  int64_t groupCount() const { return batch * kvHeads; }
  int64_t groupRows() const { return groups * length; }
  // Elements of the query-shaped, key-shaped, probability and mask arrays.
  size_t queryElements() const { return size_t(groupCount() * groupRows() * dimension); }
  size_t keyElements() const { return size_t(groupCount() * keys * dimension); }
  size_t probabilityElements() const { return size_t(groupCount() * groupRows() * keys); }
  size_t maskElements() const { return size_t(maskBatch * length * keys); }
};

struct KeyRange {
  int64_t begin, end;
};

// Query rows [row0, row0 + rows) of the grouped layout, at positions from firstPosition, that see keys `range`.
struct QueryBlock {
  int64_t row0, rows, firstPosition, maskIndex;
  KeyRange range;
};

// For each mask batch and block of query positions, the keys some row of the block sees (all keys without a mask).
std::vector<KeyRange> visibleKeyRanges(const AttentionLayout& layout, const float* mask) {
  const int64_t blocks = layout.blocksPerHead();
  std::vector<KeyRange> ranges(size_t(layout.maskBatch * blocks), KeyRange{0, layout.keys});
  if (!mask) return ranges;
  for (int64_t maskIndex = 0; maskIndex < layout.maskBatch; maskIndex++) {
    for (int64_t block = 0; block < blocks; block++) {
      KeyRange range{layout.keys, 0};
      const int64_t first = block * kAttentionRowBlock, last = std::min(layout.length, first + kAttentionRowBlock);
      for (int64_t position = first; position < last; position++) {
        const float* row = mask + (maskIndex * layout.length + position) * layout.keys;
        int64_t begin = 0, end = layout.keys;
        while (begin < end && row[begin] <= kHiddenBelow) begin++;
        while (end > begin && row[end - 1] <= kHiddenBelow) end--;
        if (begin == end) begin = 0, end = layout.keys;
        range.begin = std::min(range.begin, begin);
        range.end = std::max(range.end, end);
      }
      ranges[size_t(maskIndex * blocks + block)] = range;
    }
  }
  return ranges;
}

bool attentionLayout(napi_env env, napi_value* argv, AttentionLayout* layout) {
  *layout = {integer(env, argv[0]), integer(env, argv[1]), integer(env, argv[2]), integer(env, argv[3]), integer(env, argv[4]), integer(env, argv[5]), integer(env, argv[6])};
  if (layout->batch < 0 || layout->kvHeads < 0 || layout->groups < 1 || layout->length < 1 || layout->keys < 1 || layout->dimension < 1 ||
      (layout->maskBatch != 1 && layout->maskBatch != layout->batch)) {
    return fail(env, "attention: the shape arguments must be positive, the mask batch 1 or the batch");
  }
  return true;
}

// body(block) for each block of one (batch, key-value head) group's query rows, head by head.
template <typename Body>
void forEachQueryBlock(const AttentionLayout& layout, const std::vector<KeyRange>& ranges, int64_t group, const Body& body) {
  const int64_t blocks = layout.blocksPerHead(), maskIndex = layout.maskBatch == 1 ? 0 : group / layout.kvHeads;
  for (int64_t head = 0; head < layout.groups; head++) {
    for (int64_t block = 0; block < blocks; block++) {
      const int64_t firstPosition = block * kAttentionRowBlock;
      body(QueryBlock{group * layout.groupRows() + head * layout.length + firstPosition, std::min(layout.length - firstPosition, kAttentionRowBlock),
                      firstPosition, maskIndex, ranges[size_t(maskIndex * blocks + block)]});
    }
  }
}
}  // namespace

// crossEntropy(logits, targets, logSumExp, rows, columns) → the mean of log Σ exp(row) − row[target] over rows whose
// target is not −100 (NaN when there are none, as PyTorch's mean over nothing); logSumExp [rows] receives each counted
// row's value (0 for ignored rows).
napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!arguments(env, info, argv)) return nullptr;
  Floats logits, logSumExp;
  const int32_t* targets;
  size_t targetCount;
  if (!floats(env, argv[0], &logits, "logits must be a Float32Array") || !int32s(env, argv[1], &targets, &targetCount, "targets must be an Int32Array") ||
      !floats(env, argv[2], &logSumExp, "logSumExp must be a Float32Array")) {
    return nullptr;
  }
  const int64_t rows = integer(env, argv[3]), columns = integer(env, argv[4]);
  if (rows < 0 || columns < 1 || logits.length != size_t(rows * columns) || targetCount != size_t(rows) || logSumExp.length != size_t(rows)) {
    fail(env, "crossEntropy: lengths do not match [rows, columns]");
    return nullptr;
  }
  for (int64_t row = 0; row < rows; row++) {
    if (targets[row] != kIgnoreIndex && (targets[row] < 0 || targets[row] >= columns)) {
      fail(env, "crossEntropy: a label is neither -100 (ignored) nor a class index in [0, vocabulary)");
      return nullptr;
    }
  }
  // Per-row losses summed afterwards in row order, so the result does not depend on the thread count.
  std::vector<double> losses(size_t(rows), 0.0);
  parallelFor(rows, rows * columns, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(columns));
    for (int64_t row = begin; row < end; row++) {
      if (targets[row] == kIgnoreIndex) {
        logSumExp.data[row] = 0;
        continue;
      }
      const float* x = logits.data + row * columns;
      const float value = float(logSumExpRow(x, scratch.data(), columns));
      logSumExp.data[row] = value;
      losses[size_t(row)] = double(value) - double(x[targets[row]]);
    }
  });
  double total = 0;
  int64_t counted = 0;
  for (int64_t row = 0; row < rows; row++) {
    if (targets[row] == kIgnoreIndex) continue;
    total += losses[size_t(row)];
    counted++;
  }
  return numberValue(env, total / double(counted));
}

// crossEntropyGrad(dy, logits, targets, logSumExp, dLogits, rows, columns): dLogits = (softmax − onehot)·dy/count on
// counted rows, 0 on ignored ones; all NaN when no row is counted (dy/0 scales every row, as in the tf-op composition).
napi_value CrossEntropyGrad(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!arguments(env, info, argv)) return nullptr;
  Floats logits, logSumExp, dLogits;
  const int32_t* targets;
  size_t targetCount;
  const float dy = float(number(env, argv[0]));
  if (!floats(env, argv[1], &logits, "logits must be a Float32Array") || !int32s(env, argv[2], &targets, &targetCount, "targets must be an Int32Array") ||
      !floats(env, argv[3], &logSumExp, "logSumExp must be a Float32Array") || !floats(env, argv[4], &dLogits, "dLogits must be a Float32Array")) {
    return nullptr;
  }
  const int64_t rows = integer(env, argv[5]), columns = integer(env, argv[6]);
  if (rows < 0 || columns < 1 || logits.length != size_t(rows * columns) || targetCount != size_t(rows) || logSumExp.length != size_t(rows) ||
      dLogits.length != logits.length) {
    fail(env, "crossEntropyGrad: lengths do not match [rows, columns]");
    return nullptr;
  }
  int64_t counted = 0;
  for (int64_t row = 0; row < rows; row++) {
    if (targets[row] == kIgnoreIndex) continue;
    if (targets[row] < 0 || targets[row] >= columns) {
      fail(env, "crossEntropyGrad: a label is neither -100 (ignored) nor a class index in [0, vocabulary)");
      return nullptr;
    }
    counted++;
  }
  if (counted == 0) {
    std::fill(dLogits.data, dLogits.data + dLogits.length, NAN);
    return undefinedValue(env);
  }
  const float scale = dy / float(counted);
  parallelFor(rows, rows * columns, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      float* dx = dLogits.data + row * columns;
      if (targets[row] == kIgnoreIndex) {
        std::fill(dx, dx + columns, 0.0f);
      } else {
        crossEntropyGradRow(logits.data + row * columns, logSumExp.data[row], targets[row], scale, dx, columns);
      }
    }
  });
  return undefinedValue(env);
}

// rotary(x, cos, sin, out, batch, length, heads, dimension, anglesBatch, transposed): x and out [batch, length, heads,
// dimension], cos and sin [anglesBatch (1 or batch), length, dimension].
napi_value Rotary(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!arguments(env, info, argv)) return nullptr;
  Floats x, cos, sin, out;
  if (!floats(env, argv[0], &x, "x must be a Float32Array") || !floats(env, argv[1], &cos, "cos must be a Float32Array") ||
      !floats(env, argv[2], &sin, "sin must be a Float32Array") || !floats(env, argv[3], &out, "out must be a Float32Array")) {
    return nullptr;
  }
  const int64_t batch = integer(env, argv[4]), length = integer(env, argv[5]), heads = integer(env, argv[6]), dimension = integer(env, argv[7]);
  const int64_t anglesBatch = integer(env, argv[8]);
  const bool transposed = boolean(env, argv[9]);
  if (batch < 0 || length < 0 || heads < 0 || dimension < 2 || dimension % 2 != 0 || (anglesBatch != 1 && anglesBatch != batch) ||
      x.length != size_t(batch * length * heads * dimension) || out.length != x.length || cos.length != size_t(anglesBatch * length * dimension) ||
      sin.length != cos.length) {
    fail(env, "rotary: lengths do not match [batch, length, heads, dimension] and angles [1 or batch, length, dimension]");
    return nullptr;
  }
  const int64_t rowWidth = heads * dimension;
  parallelFor(batch * length, batch * length * rowWidth, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const int64_t angleRow = (anglesBatch == 1 ? row % length : row) * dimension;
      rotaryRow(x.data + row * rowWidth, cos.data + angleRow, sin.data + angleRow, out.data + row * rowWidth, heads, dimension / 2, transposed);
    }
  });
  return undefinedValue(env);
}

// maskedSoftmax(scores, mask | null, out, rows, columns, length, rowsPerBatch, maskBatch, scale): scores and out
// [rows, columns], rows running over [batch, heads, length]; mask [maskBatch (1 or batch), length, columns].
napi_value MaskedSoftmax(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!arguments(env, info, argv)) return nullptr;
  Floats scores, mask, out;
  if (!floats(env, argv[0], &scores, "scores must be a Float32Array") || !floats(env, argv[2], &out, "out must be a Float32Array")) return nullptr;
  const bool masked = !isNull(env, argv[1]);
  if (masked && !floats(env, argv[1], &mask, "mask must be a Float32Array")) return nullptr;
  const int64_t rows = integer(env, argv[3]), columns = integer(env, argv[4]), length = integer(env, argv[5]);
  const int64_t rowsPerBatch = integer(env, argv[6]), maskBatch = integer(env, argv[7]);
  const float scale = float(number(env, argv[8]));
  if (rows < 0 || columns < 1 || length < 1 || rowsPerBatch < 1 || rowsPerBatch % length != 0 || rows % rowsPerBatch != 0 ||
      scores.length != size_t(rows * columns) || out.length != scores.length ||
      (masked && ((maskBatch != 1 && maskBatch != rows / rowsPerBatch) || mask.length != size_t(maskBatch * length * columns)))) {
    fail(env, "maskedSoftmax: lengths do not match scores [batch, heads, length, keys] and mask [1 or batch, length, keys]");
    return nullptr;
  }
  parallelFor(rows, rows * columns, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const int64_t maskRow = (maskBatch == 1 ? 0 : row / rowsPerBatch) * length + row % length;
      maskedSoftmaxRow(scores.data + row * columns, masked ? mask.data + maskRow * columns : nullptr, scale, out.data + row * columns, columns);
    }
  });
  return undefinedValue(env);
}

// maskedSoftmaxGrad(dy, probabilities, dx, rows, columns, scale)
napi_value MaskedSoftmaxGrad(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!arguments(env, info, argv)) return nullptr;
  Floats dy, probabilities, dx;
  if (!floats(env, argv[0], &dy, "dy must be a Float32Array") || !floats(env, argv[1], &probabilities, "probabilities must be a Float32Array") ||
      !floats(env, argv[2], &dx, "dx must be a Float32Array")) {
    return nullptr;
  }
  const int64_t rows = integer(env, argv[3]), columns = integer(env, argv[4]);
  const float scale = float(number(env, argv[5]));
  if (rows < 0 || columns < 1 || dy.length != size_t(rows * columns) || probabilities.length != dy.length || dx.length != dy.length) {
    fail(env, "maskedSoftmaxGrad: lengths do not match [rows, columns]");
    return nullptr;
  }
  parallelFor(rows, rows * columns, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      maskedSoftmaxGradRow(dy.data + row * columns, probabilities.data + row * columns, scale, dx.data + row * columns, columns);
    }
  });
  return undefinedValue(env);
}


// attention(query, keys, values, mask | null, output, probabilities, batch, kvHeads, groups, length, keys, dimension,
// maskBatch, scale): P = softmax(Q·Kᵀ / scale + mask), output = P·V per head; query and output [batch, kvHeads,
// groups·length, dimension], keys and values [batch, kvHeads, keys, dimension], mask [maskBatch, length, keys],
// probabilities [batch, kvHeads, groups·length, keys] (kept for the gradient). Keys a block's rows cannot see are
// neither multiplied nor exponentiated: a causal mask halves the work.
napi_value Attention(napi_env env, napi_callback_info info) {
  napi_value argv[14];
  if (!arguments(env, info, argv)) return nullptr;
  Floats query, keys, values, mask, output, probabilities;
  if (!floats(env, argv[0], &query, "query must be a Float32Array") || !floats(env, argv[1], &keys, "keys must be a Float32Array") ||
      !floats(env, argv[2], &values, "values must be a Float32Array") || !floats(env, argv[4], &output, "output must be a Float32Array") ||
      !floats(env, argv[5], &probabilities, "probabilities must be a Float32Array")) {
    return nullptr;
  }
  const bool masked = !isNull(env, argv[3]);
  if (masked && !floats(env, argv[3], &mask, "mask must be a Float32Array")) return nullptr;
  AttentionLayout layout;
  if (!attentionLayout(env, argv + 6, &layout)) return nullptr;
  const float scale = float(number(env, argv[13]));
  if (query.length != layout.queryElements() || output.length != query.length || keys.length != layout.keyElements() || values.length != keys.length ||
      probabilities.length != layout.probabilityElements() || (masked && mask.length != layout.maskElements())) {
    fail(env, "attention: lengths do not match query [batch, kvHeads, groups·length, d], keys [batch, kvHeads, keys, d] and mask [1 or batch, length, keys]");
    return nullptr;
  }
  const std::vector<KeyRange> ranges = visibleKeyRanges(layout, masked ? mask.data : nullptr);
  const int64_t d = layout.dimension, keyCount = layout.keys;
  parallelProducts(layout.groupCount(), [&](int64_t firstGroup, int64_t endGroup) {
    for (int64_t group = firstGroup; group < endGroup; group++) {
      const float* groupKeys = keys.data + group * keyCount * d;
      const float* groupValues = values.data + group * keyCount * d;
      forEachQueryBlock(layout, ranges, group, [&](const QueryBlock& block) {
        const auto [begin, end] = block.range;
        float* scores = probabilities.data + block.row0 * keyCount;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(block.rows), int(end - begin), int(d), 1.0f, query.data + block.row0 * d, int(d),
                    groupKeys + begin * d, int(d), 0.0f, scores + begin, int(keyCount));
        for (int64_t row = 0; row < block.rows; row++) {
          float* out = scores + row * keyCount;
          const float* maskRow = masked ? mask.data + (block.maskIndex * layout.length + block.firstPosition + row) * keyCount + begin : nullptr;
          maskedSoftmaxRow(out + begin, maskRow, scale, out + begin, end - begin);
          std::fill(out, out + begin, 0.0f);
          std::fill(out + end, out + keyCount, 0.0f);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(block.rows), int(d), int(end - begin), 1.0f, scores + begin, int(keyCount),
                    groupValues + begin * d, int(d), 0.0f, output.data + block.row0 * d, int(d));
      });
    }
  });
  return undefinedValue(env);
}

// attentionGrad(dy, query, keys, values, probabilities, mask | null, dQuery, dKeys, dValues, batch, kvHeads, groups,
// length, keys, dimension, maskBatch, scale): with dS = P ⊙ (dy·Vᵀ − Σ (dy·Vᵀ)⊙P) / scale, dQuery = dS·K,
// dKeys = Σ dSᵀ·Q and dValues = Σ Pᵀ·dy over a group's heads, in the layouts of attention.
napi_value AttentionGrad(napi_env env, napi_callback_info info) {
  napi_value argv[17];
  if (!arguments(env, info, argv)) return nullptr;
  Floats dy, query, keys, values, probabilities, mask, dQuery, dKeys, dValues;
  if (!floats(env, argv[0], &dy, "dy must be a Float32Array") || !floats(env, argv[1], &query, "query must be a Float32Array") ||
      !floats(env, argv[2], &keys, "keys must be a Float32Array") || !floats(env, argv[3], &values, "values must be a Float32Array") ||
      !floats(env, argv[4], &probabilities, "probabilities must be a Float32Array") || !floats(env, argv[6], &dQuery, "dQuery must be a Float32Array") ||
      !floats(env, argv[7], &dKeys, "dKeys must be a Float32Array") || !floats(env, argv[8], &dValues, "dValues must be a Float32Array")) {
    return nullptr;
  }
  const bool masked = !isNull(env, argv[5]);
  if (masked && !floats(env, argv[5], &mask, "mask must be a Float32Array")) return nullptr;
  AttentionLayout layout;
  if (!attentionLayout(env, argv + 9, &layout)) return nullptr;
  const float scale = float(number(env, argv[16]));
  const size_t queryElements = layout.queryElements(), keyElements = layout.keyElements();
  if (query.length != queryElements || dy.length != queryElements || dQuery.length != queryElements || keys.length != keyElements ||
      values.length != keyElements || dKeys.length != keyElements || dValues.length != keyElements || probabilities.length != layout.probabilityElements() ||
      (masked && mask.length != layout.maskElements())) {
    fail(env, "attentionGrad: lengths do not match the layouts of attention");
    return nullptr;
  }
  const std::vector<KeyRange> ranges = visibleKeyRanges(layout, masked ? mask.data : nullptr);
  const int64_t d = layout.dimension, keyCount = layout.keys;
  std::fill(dKeys.data, dKeys.data + dKeys.length, 0.0f);
  std::fill(dValues.data, dValues.data + dValues.length, 0.0f);
  parallelProducts(layout.groupCount(), [&](int64_t firstGroup, int64_t endGroup) {
    std::vector<float> dScores(size_t(kAttentionRowBlock * keyCount));
    for (int64_t group = firstGroup; group < endGroup; group++) {
      const float* groupKeys = keys.data + group * keyCount * d;
      const float* groupValues = values.data + group * keyCount * d;
      float* groupDKeys = dKeys.data + group * keyCount * d;
      float* groupDValues = dValues.data + group * keyCount * d;
      forEachQueryBlock(layout, ranges, group, [&](const QueryBlock& block) {
        const auto [begin, end] = block.range;
        const int64_t visible = end - begin;
        const float* blockProbabilities = probabilities.data + block.row0 * keyCount + begin;
        const float* blockDy = dy.data + block.row0 * d;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(visible), int(d), int(block.rows), 1.0f, blockProbabilities, int(keyCount), blockDy, int(d),
                    1.0f, groupDValues + begin * d, int(d));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(block.rows), int(visible), int(d), 1.0f, blockDy, int(d), groupValues + begin * d, int(d),
                    0.0f, dScores.data(), int(visible));
        for (int64_t row = 0; row < block.rows; row++) {
          float* dRow = dScores.data() + row * visible;
          maskedSoftmaxGradRow(dRow, blockProbabilities + row * keyCount, scale, dRow, visible);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(block.rows), int(d), int(visible), 1.0f, dScores.data(), int(visible),
                    groupKeys + begin * d, int(d), 0.0f, dQuery.data + block.row0 * d, int(d));
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(visible), int(d), int(block.rows), 1.0f, dScores.data(), int(visible),
                    query.data + block.row0 * d, int(d), 1.0f, groupDKeys + begin * d, int(d));
      });
    }
  });
  return undefinedValue(env);
}

}  // namespace peft_native
