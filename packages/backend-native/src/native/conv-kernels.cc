// Conv2D and its two gradients on NHWC inputs and HWIO filters, as sgemm over patch matrices (im2col): each output
// pixel's receptive field, flattened in the filter's (row, column, channel) order, is one row of a matrix whose
// product with the filter viewed as [rows·columns·inChannels, outChannels] is the convolution. The patch matrix is
// built a tile of pixels at a time into a buffer of at most kTileFloats, so a large image never needs its whole one.
#include "gather-conv-kernels.h"
#include "native-arguments.h"

#include <cstring>
#include <tuple>

namespace peft_native {

namespace {

constexpr int64_t kTileFloats = int64_t(1) << 20;  // 4 MiB of patches per tile

// What tfjs' computeConv2DInfo says about one convolution, in the order the JS side passes it.
struct ConvGeometry {
  int64_t batch, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth;
  int64_t strideHeight, strideWidth, dilationHeight, dilationWidth, padTop, padLeft;

  int64_t patch() const { return filterHeight * filterWidth * inChannels; }
  int64_t pixels() const { return batch * outHeight * outWidth; }
  size_t inputSize() const { return size_t(batch * inHeight * inWidth * inChannels); }
  size_t outputSize() const { return size_t(pixels() * outChannels); }
  size_t filterSize() const { return size_t(patch() * outChannels); }
  // The patch matrix is the input itself: a 1×1 filter over every pixel.
  bool pointwise() const { return filterHeight == 1 && filterWidth == 1 && strideHeight == 1 && strideWidth == 1 && padTop == 0 && padLeft == 0; }
  int64_t tileRows() const { return std::max<int64_t>(1, std::min(pixels(), kTileFloats / std::max<int64_t>(1, patch()))); }
};

constexpr size_t kGeometryFields = 15;

bool geometry(napi_env env, napi_value value, ConvGeometry* result, const char* what) {
  void* data;
  size_t length;
  if (!typedArray(env, value, napi_int32_array, &data, &length, what)) return false;
  if (length != kGeometryFields) return fail(env, what);
  const int32_t* fields = static_cast<const int32_t*>(data);
  int64_t* target = &result->batch;
  for (size_t field = 0; field < kGeometryFields; field++) {
    if (fields[field] < 0) return fail(env, what);
    target[field] = fields[field];
  }
  return true;
}

// The receptive field of output pixel p: calls visit(destination offset in the patch row, input offset or -1 for
// padding) once per filter tap, each covering inChannels consecutive floats.
template <typename Visit>
void forEachTap(const ConvGeometry& g, int64_t pixel, const Visit& visit) {
  const int64_t column = pixel % g.outWidth, row = (pixel / g.outWidth) % g.outHeight, image = pixel / (g.outWidth * g.outHeight);
  int64_t destination = 0;
  for (int64_t filterRow = 0; filterRow < g.filterHeight; filterRow++) {
    const int64_t inRow = row * g.strideHeight - g.padTop + filterRow * g.dilationHeight;
    for (int64_t filterColumn = 0; filterColumn < g.filterWidth; filterColumn++, destination += g.inChannels) {
      const int64_t inColumn = column * g.strideWidth - g.padLeft + filterColumn * g.dilationWidth;
      const bool inside = inRow >= 0 && inRow < g.inHeight && inColumn >= 0 && inColumn < g.inWidth;
      visit(destination, inside ? ((image * g.inHeight + inRow) * g.inWidth + inColumn) * g.inChannels : int64_t(-1));
    }
  }
}

// Rows [first, first + count) of the patch matrix of x into patches (count × patch), split over the threads.
void gatherPatches(const ConvGeometry& g, const float* x, int64_t first, int64_t count, float* patches) {
  const int64_t width = g.patch();
  parallelFor(count, count * width, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; row++) {
      float* target = patches + row * width;
      forEachTap(g, first + row, [&](int64_t destination, int64_t source) {
        if (source < 0) std::fill(target + destination, target + destination + g.inChannels, 0.0f);
        else std::memcpy(target + destination, x + source, size_t(g.inChannels) * sizeof(float));
      });
    }
  });
}

// The adjoint of gatherPatches: adds each patch row back onto the input pixels it came from. Serial, because
// neighbouring pixels' receptive fields overlap.
void scatterPatches(const ConvGeometry& g, const float* patches, int64_t first, int64_t count, float* dx) {
  const int64_t width = g.patch();
  for (int64_t row = 0; row < count; row++) {
    const float* source = patches + row * width;
    forEachTap(g, first + row, [&](int64_t offset, int64_t destination) {
      if (destination < 0) return;
      for (int64_t channel = 0; channel < g.inChannels; channel++) dx[destination + channel] += source[offset + channel];
    });
  }
}

// Reads (first, second, out, geometry) and checks the three arrays' lengths against the sizes the kernel expects.
template <typename Sizes>
bool convArguments(napi_env env, napi_callback_info info, const char* name, Floats* first, Floats* second, Floats* out, ConvGeometry* g, const Sizes& sizes) {
  napi_value argv[4];
  if (!arguments(env, info, argv)) return false;
  if (!floats(env, argv[0], first, name) || !floats(env, argv[1], second, name) || !floats(env, argv[2], out, name) || !geometry(env, argv[3], g, name)) return false;
  const auto [firstSize, secondSize, outSize] = sizes(*g);
  if (first->length != firstSize || second->length != secondSize || out->length != outSize) return fail(env, name);
  return true;
}

}  // namespace

// conv2d(x, filter, out, geometry): out [batch, outHeight, outWidth, outChannels] = patches(x) · filter.
napi_value Conv2d(napi_env env, napi_callback_info info) {
  Floats x, filter, out;
  ConvGeometry g;
  if (!convArguments(env, info, "conv2d: expected Float32Arrays x, filter, out sized by the geometry Int32Array", &x, &filter, &out, &g,
                     [](const ConvGeometry& g) { return std::tuple(g.inputSize(), g.filterSize(), g.outputSize()); })) {
    return nullptr;
  }
  const int64_t pixels = g.pixels(), width = g.patch(), outChannels = g.outChannels;
  if (pixels == 0 || outChannels == 0) return undefinedValue(env);
  if (width == 0) {
    std::fill(out.data, out.data + out.length, 0.0f);
    return undefinedValue(env);
  }
  if (g.pointwise()) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(pixels), int(outChannels), int(width), 1.0f, x.data, int(width), filter.data, int(outChannels), 0.0f,
                out.data, int(outChannels));
    return undefinedValue(env);
  }
  const int64_t tileRows = g.tileRows();
  std::vector<float> patches(size_t(tileRows * width));
  for (int64_t first = 0; first < pixels; first += tileRows) {
    const int64_t count = std::min(tileRows, pixels - first);
    gatherPatches(g, x.data, first, count, patches.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(count), int(outChannels), int(width), 1.0f, patches.data(), int(width), filter.data, int(outChannels),
                0.0f, out.data + first * outChannels, int(outChannels));
  }
  return undefinedValue(env);
}

// conv2dBackpropInput(dy, filter, dx, geometry): dx = the patches of dy · filterᵀ added back onto the pixels they
// came from.
napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  Floats dy, filter, dx;
  ConvGeometry g;
  if (!convArguments(env, info, "conv2dBackpropInput: expected Float32Arrays dy, filter, dx sized by the geometry Int32Array", &dy, &filter, &dx, &g,
                     [](const ConvGeometry& g) { return std::tuple(g.outputSize(), g.filterSize(), g.inputSize()); })) {
    return nullptr;
  }
  std::fill(dx.data, dx.data + dx.length, 0.0f);
  const int64_t pixels = g.pixels(), width = g.patch(), outChannels = g.outChannels;
  if (pixels == 0 || width == 0 || outChannels == 0) return undefinedValue(env);
  if (g.pointwise()) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(pixels), int(width), int(outChannels), 1.0f, dy.data, int(outChannels), filter.data, int(outChannels), 0.0f,
                dx.data, int(width));
    return undefinedValue(env);
  }
  const int64_t tileRows = g.tileRows();
  std::vector<float> patches(size_t(tileRows * width));
  for (int64_t first = 0; first < pixels; first += tileRows) {
    const int64_t count = std::min(tileRows, pixels - first);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(count), int(width), int(outChannels), 1.0f, dy.data + first * outChannels, int(outChannels), filter.data,
                int(outChannels), 0.0f, patches.data(), int(width));
    scatterPatches(g, patches.data(), first, count, dx.data);
  }
  return undefinedValue(env);
}

// conv2dBackpropFilter(x, dy, dw, geometry): dw [filterHeight·filterWidth·inChannels, outChannels] = patches(x)ᵀ · dy,
// accumulated over the tiles.
napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  Floats x, dy, dw;
  ConvGeometry g;
  if (!convArguments(env, info, "conv2dBackpropFilter: expected Float32Arrays x, dy, dw sized by the geometry Int32Array", &x, &dy, &dw, &g,
                     [](const ConvGeometry& g) { return std::tuple(g.inputSize(), g.outputSize(), g.filterSize()); })) {
    return nullptr;
  }
  std::fill(dw.data, dw.data + dw.length, 0.0f);
  const int64_t pixels = g.pixels(), width = g.patch(), outChannels = g.outChannels;
  if (pixels == 0 || width == 0 || outChannels == 0) return undefinedValue(env);
  if (g.pointwise()) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(width), int(outChannels), int(pixels), 1.0f, x.data, int(width), dy.data, int(outChannels), 0.0f, dw.data,
                int(outChannels));
    return undefinedValue(env);
  }
  const int64_t tileRows = g.tileRows();
  std::vector<float> patches(size_t(tileRows * width));
  for (int64_t first = 0; first < pixels; first += tileRows) {
    const int64_t count = std::min(tileRows, pixels - first);
    gatherPatches(g, x.data, first, count, patches.data());
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(width), int(outChannels), int(count), 1.0f, patches.data(), int(width), dy.data + first * outChannels,
                int(outChannels), first == 0 ? 0.0f : 1.0f, dw.data, int(outChannels));
  }
  return undefinedValue(env);
}

}  // namespace peft_native
