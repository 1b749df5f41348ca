// GatherV2 and UnsortedSegmentSum (the gather's gradient, so the embedding's): row copies and row sums in place of
// tfjs-backend-cpu's per-element index arithmetic and its one masked full-tensor pass per segment.
#include "gather-conv-kernels.h"
#include "native-arguments.h"

#include <cstring>

namespace peft_native {

namespace {

// Any 32-bit typed array (float32 or int32 tensor storage): a gather copies words, whatever they hold.
bool wordArray(napi_env env, napi_value value, uint32_t** data, size_t* length, const char* what) {
  bool isTypedArray = false;
  napi_is_typedarray(env, value, &isTypedArray);
  if (!isTypedArray) return fail(env, what);
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  void* raw;
  napi_get_typedarray_info(env, value, &type, length, &raw, &buffer, &offset);
  if (type != napi_float32_array && type != napi_int32_array && type != napi_uint32_array) return fail(env, what);
  *data = static_cast<uint32_t*>(raw);
  return true;
}

bool int32Array(napi_env env, napi_value value, const int32_t** data, size_t* length, const char* what) {
  void* raw;
  if (!typedArray(env, value, napi_int32_array, &raw, length, what)) return false;
  *data = static_cast<const int32_t*>(raw);
  return true;
}

}  // namespace

// gather(x, indices, out, batchSize, outerSize, dimSize, sliceSize): x is [batch, outer, dim, slice], indices
// [batch, count], out [batch, outer, count, slice] with out[b, o, i] = x[b, o, indices[b, i]]: tfjs' GatherV2 after
// it flattens the shapes. The caller has checked every index is in [0, dimSize).
napi_value Gather(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!arguments(env, info, argv)) return nullptr;
  uint32_t *x, *out;
  const int32_t* indices;
  size_t xLength, indicesLength, outLength;
  if (!wordArray(env, argv[0], &x, &xLength, "gather: x must be a Float32Array or an Int32Array") ||
      !int32Array(env, argv[1], &indices, &indicesLength, "gather: indices must be an Int32Array") ||
      !wordArray(env, argv[2], &out, &outLength, "gather: out must be a Float32Array or an Int32Array")) {
    return nullptr;
  }
  const int64_t batchSize = integer(env, argv[3]), outerSize = integer(env, argv[4]), dimSize = integer(env, argv[5]), sliceSize = integer(env, argv[6]);
  if (batchSize < 1 || outerSize < 0 || dimSize < 0 || sliceSize < 0 || indicesLength % size_t(batchSize) != 0) {
    fail(env, "gather: the shapes do not match the arrays");
    return nullptr;
  }
  const int64_t count = int64_t(indicesLength) / batchSize;
  if (xLength != size_t(batchSize * outerSize * dimSize * sliceSize) || outLength != size_t(batchSize * outerSize * count * sliceSize)) {
    fail(env, "gather: the shapes do not match the arrays");
    return nullptr;
  }
  const int64_t rows = batchSize * outerSize * count;
  // A row is one slice; checking the index again here keeps a wrong call from reading past x.
  bool inRange = true;
  for (size_t index = 0; index < indicesLength; index++) inRange = inRange && indices[index] >= 0 && indices[index] < dimSize;
  if (!inRange) {
    fail(env, "gather: an index is outside [0, dimSize)");
    return nullptr;
  }
  parallelFor(rows, rows * sliceSize, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      const int64_t batch = row / (outerSize * count), outer = (row / count) % outerSize, position = row % count;
      const int64_t source = (batch * outerSize + outer) * dimSize + indices[batch * count + position];
      std::memcpy(out + row * sliceSize, x + source * sliceSize, size_t(sliceSize) * sizeof(uint32_t));
    }
  });
  return undefinedValue(env);
}

// segmentSum(x, segmentIds, out, numSegments, columns): x [rows, columns], out [numSegments, columns] with out[s] the
// sum of the rows whose id is s; ids outside [0, numSegments) add nowhere. Like tfjs-backend-cpu, each sum runs in
// double over the rows in order and is rounded once. The rows are grouped by segment first (a stable counting sort),
// so every segment is summed by one thread: deterministic, parallel over segments.
napi_value SegmentSum(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!arguments(env, info, argv)) return nullptr;
  Floats x, out;
  const int32_t* ids;
  size_t rows;
  if (!floats(env, argv[0], &x, "segmentSum: x must be a Float32Array") || !int32Array(env, argv[1], &ids, &rows, "segmentSum: segmentIds must be an Int32Array") ||
      !floats(env, argv[2], &out, "segmentSum: out must be a Float32Array")) {
    return nullptr;
  }
  const int64_t segments = integer(env, argv[3]), columns = integer(env, argv[4]);
  if (segments < 0 || columns < 0 || x.length != rows * size_t(columns) || out.length != size_t(segments * columns)) {
    fail(env, "segmentSum: the shapes do not match the arrays");
    return nullptr;
  }
  // starts[s]..starts[s + 1]: where segment s's rows lie in `order`.
  std::vector<int64_t> starts(size_t(segments) + 1, 0), order;
  for (size_t row = 0; row < rows; row++) {
    if (ids[row] >= 0 && ids[row] < segments) starts[size_t(ids[row]) + 1]++;
  }
  for (int64_t segment = 0; segment < segments; segment++) starts[size_t(segment) + 1] += starts[size_t(segment)];
  order.resize(size_t(starts[size_t(segments)]));
  {
    std::vector<int64_t> next(starts.begin(), starts.end() - 1);
    for (size_t row = 0; row < rows; row++) {
      if (ids[row] >= 0 && ids[row] < segments) order[size_t(next[size_t(ids[row])]++)] = int64_t(row);
    }
  }
  parallelFor(segments, std::max<int64_t>(int64_t(x.length), segments * columns), [&](int64_t begin, int64_t end) {
    std::vector<double> sums(static_cast<size_t>(columns));
    for (int64_t segment = begin; segment < end; segment++) {
      std::fill(sums.begin(), sums.end(), 0.0);
      for (int64_t member = starts[size_t(segment)]; member < starts[size_t(segment) + 1]; member++) {
        const float* row = x.data + order[size_t(member)] * columns;
        for (int64_t column = 0; column < columns; column++) sums[size_t(column)] += row[column];
      }
      float* target = out.data + segment * columns;
      for (int64_t column = 0; column < columns; column++) target[column] = float(sums[size_t(column)]);
    }
  });
  return undefinedValue(env);
}

}  // namespace peft_native
