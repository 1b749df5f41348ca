import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * The wasm backend lacks the kernels behind two gradients we need: UnsortedSegmentSum (the
 * gradient of gather, i.e. of every embedding lookup) and Conv2DBackpropFilter (the gradient of
 * a conv weight). These plain-JS versions run on wasm memory; they are only on backward paths.
 *
 * It also gets replacements for kernels that copy far more than they need to: Identity copied the
 * tensor (tfjs clones every tensor it saves for a gradient, so this doubled the memory a training
 * step keeps, and cost ~0.35 s a step), as did a Cast to the same dtype; Slice copied its whole
 * input out of the heap before taking the slice (Unpack and SplitV, one Slice per part, so copied
 * the input once per part: ~1.4 s of a step in attention's per-head products). And a transpose of
 * the last two axes, which the backend does element by element with index arithmetic, is done in
 * cache-friendly tiles (2–3× faster; the matMul rewrite transposes often).
 */
export function registerWasmFallbackKernels(): void {
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
  }
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2dBackpropFilter });
  }
  if (leanKernelsRegistered) return;
  leanKernelsRegistered = true;
  const replacements: [string, (args: KernelArguments) => tf.TensorInfo | tf.TensorInfo[] | null][] = [
    ['Identity', identity],
    // Multiply's and Square's gradients cast their float32 operands to float32: a copy each time.
    ['Cast', (args) => ((args.inputs.x as tf.TensorInfo).dtype === (args.attrs as unknown as tf.CastAttrs).dtype ? identity(args) : null)],
    ['Slice', slice],
    ['Transpose', transpose],
    ['Unpack', unpack],
    ['SplitV', splitV],
  ];
  for (const [kernelName, kernelFunc] of replacements) {
    const original = tf.getKernel(kernelName, 'wasm')!.kernelFunc;
    tf.unregisterKernel(kernelName, 'wasm');
    // String tensors live outside the heap, and a replacement answers null where it does not apply: the original handles both.
    const replacement: tf.KernelFunc = (args) =>
      (Object.values(args.inputs).some((input) => input?.dtype === 'string') ? null : kernelFunc(args as KernelArguments)) ?? original(args);
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: replacement });
  }
}

let leanKernelsRegistered = false;

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** Shares the input's data, as the wasm Reshape kernel does: tensor data is never written in place. */
function identity({ inputs, backend }: KernelArguments): tf.TensorInfo {
  const { x } = inputs as { x: tf.TensorInfo };
  (backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Copies only the slice, one run of contiguous elements at a time, straight from heap to heap. */
function slice({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const { x } = inputs as { x: tf.TensorInfo };
  const { begin, size } = attrs as unknown as tf.SliceAttrs;
  const [start, extent] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  return copySlice(backend as BackendWasm, x, start, extent);
}

function copySlice(wasm: BackendWasm, x: tf.TensorInfo, start: number[], extent: number[]): tf.TensorInfo {
  const out = wasm.makeOutput(extent, x.dtype);
  // Views are taken only now: allocating the output may grow the heap, which detaches older views.
  const source = wasm.typedArrayFromHeap(x);
  const target = wasm.typedArrayFromHeap(out);
  if (target.length === 0) return out;
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  // A run spans the innermost partially taken axis and every (whole) axis inside it.
  let axis = rank - 1;
  while (axis > 0 && start[axis] === 0 && extent[axis] === x.shape[axis]) axis--;
  const run = axis < 0 ? 1 : extent.slice(axis).reduce((product, dimension) => product * dimension, 1);
  const index = new Array<number>(Math.max(axis, 0)).fill(0);
  for (let written = 0; written < target.length; written += run) {
    let offset = axis < 0 ? 0 : start[axis] * (strides[axis] ?? 1);
    for (let dimension = 0; dimension < index.length; dimension++) offset += (start[dimension] + index[dimension]) * strides[dimension];
    target.set(source.subarray(offset, offset + run), written);
    for (let dimension = index.length - 1; dimension >= 0; dimension--) {
      if (++index[dimension] < extent[dimension]) break;
      index[dimension] = 0;
    }
  }
  return out;
}

/** Swaps of the last two axes (after merging axes that stay together) as tiled batched 2-D transposes; others: null. */
function transpose({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo | null {
  const { x } = inputs as { x: tf.TensorInfo };
  const { perm } = attrs as unknown as tf.TransposeAttrs;
  const { shape, order } = collapseAxes(x.shape, perm);
  const rank = shape.length;
  if (x.dtype === 'bool' || rank < 2 || order[rank - 1] !== rank - 2 || order[rank - 2] !== rank - 1 || order.slice(0, -2).some((axis, index) => axis !== index)) {
    return null;
  }
  const wasm = backend as BackendWasm;
  const out = wasm.makeOutput(
    perm.map((axis) => x.shape[axis]),
    x.dtype,
  );
  // float32 and int32 both move as 32-bit words: one element type keeps the loop monomorphic (~3× faster).
  const source = words(wasm, x);
  const target = words(wasm, out);
  const rows = shape[rank - 2];
  const columns = shape[rank - 1];
  const tile = 8;
  for (let start = 0; start < source.length; start += rows * columns) {
    for (let row0 = 0; row0 < rows; row0 += tile) {
      const row1 = Math.min(row0 + tile, rows);
      for (let column0 = 0; column0 < columns; column0 += tile) {
        const column1 = Math.min(column0 + tile, columns);
        for (let row = row0; row < row1; row++) {
          let from = start + row * columns + column0;
          for (let column = column0; column < column1; column++) target[start + column * rows + row] = source[from++];
        }
      }
    }
  }
  return out;
}

function words(wasm: BackendWasm, tensor: tf.TensorInfo): Int32Array {
  const view = wasm.typedArrayFromHeap(tensor);
  return new Int32Array(view.buffer, view.byteOffset, view.length);
}

/** The same transpose over fewer axes: size-1 axes dropped, axes that stay adjacent and in order merged. */
function collapseAxes(shape: readonly number[], perm: readonly number[]): { shape: number[]; order: number[] } {
  const kept = shape.map((_, axis) => axis).filter((axis) => shape[axis] !== 1);
  const rankOf = new Map(kept.map((axis, index) => [axis, index]));
  // Runs of consecutive kept input axes, in output order.
  const runs: number[][] = [];
  for (const axis of perm) {
    const position = rankOf.get(axis);
    if (position === undefined) continue;
    const run = runs[runs.length - 1];
    if (run && run[run.length - 1] + 1 === position) run.push(position);
    else runs.push([position]);
  }
  const inputOrder = [...runs].sort((a, b) => a[0] - b[0]);
  return {
    shape: inputOrder.map((run) => run.reduce((product, position) => product * shape[kept[position]], 1)),
    order: runs.map((run) => inputOrder.indexOf(run)),
  };
}

function unpack({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo[] {
  const { value } = inputs as { value: tf.TensorInfo };
  const rank = value.shape.length;
  const axis = tf.util.parseAxisParam((attrs as unknown as tf.UnpackAttrs).axis, value.shape)[0];
  const extent = [...value.shape];
  extent[axis] = 1;
  const shape = value.shape.filter((_, dimension) => dimension !== axis);
  return Array.from({ length: value.shape[axis] }, (_, part) => {
    const start = new Array<number>(rank).fill(0);
    start[axis] = part;
    return { ...copySlice(backend as BackendWasm, value, start, extent), shape };
  });
}

function splitV({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo[] {
  const { x } = inputs as { x: tf.TensorInfo };
  const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
  const splitAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, splitAxis);
  const start = new Array<number>(x.shape.length).fill(0);
  return sizes.map((size) => {
    const extent = [...x.shape];
    extent[splitAxis] = size;
    const part = copySlice(backend as BackendWasm, x, [...start], extent);
    start[splitAxis] += size;
    return part;
  });
}

function unsortedSegmentSum({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const wasm = backend as BackendWasm;
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments;
  const values = wasm.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = wasm.readSync(segmentIds.dataId) as Int32Array;
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = innerShape.reduce((product, dimension) => product * dimension, 1);
  const output = x.dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  for (let row = 0; row < ids.length; row++) {
    const segment = ids[row];
    if (segment < 0 || segment >= numSegments) continue;
    const from = row * inner;
    const to = segment * inner;
    for (let column = 0; column < inner; column++) output[to + column] += values[from + column];
  }
  return wasm.makeOutput([numSegments, ...innerShape], x.dtype, undefined, output);
}

function conv2dBackpropFilter({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const wasm = backend as BackendWasm;
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
  const input = wasm.readSync(x.dataId) as Float32Array;
  const gradient = wasm.readSync(dy.dataId) as Float32Array;
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const channelsLast = info.dataFormat === 'channelsLast';
  const inputAt = (b: number, row: number, column: number, channel: number) =>
    channelsLast
      ? ((b * inHeight + row) * inWidth + column) * inChannels + channel
      : ((b * inChannels + channel) * inHeight + row) * inWidth + column;
  const gradientAt = (b: number, row: number, column: number, channel: number) =>
    channelsLast
      ? ((b * outHeight + row) * outWidth + column) * outChannels + channel
      : ((b * outChannels + channel) * outHeight + row) * outWidth + column;
  const output = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let filterRow = 0; filterRow < filterHeight; filterRow++) {
    for (let filterColumn = 0; filterColumn < filterWidth; filterColumn++) {
      for (let inChannel = 0; inChannel < inChannels; inChannel++) {
        for (let outChannel = 0; outChannel < outChannels; outChannel++) {
          let sum = 0;
          for (let b = 0; b < batchSize; b++) {
            for (let outRow = 0; outRow < outHeight; outRow++) {
              const inRow = outRow * strideHeight + filterRow - top;
              if (inRow < 0 || inRow >= inHeight) continue;
              for (let outColumn = 0; outColumn < outWidth; outColumn++) {
                const inColumn = outColumn * strideWidth + filterColumn - left;
                if (inColumn < 0 || inColumn >= inWidth) continue;
                sum += input[inputAt(b, inRow, inColumn, inChannel)] * gradient[gradientAt(b, outRow, outColumn, outChannel)];
              }
            }
          }
          output[((filterRow * filterWidth + filterColumn) * inChannels + inChannel) * outChannels + outChannel] = sum;
        }
      }
    }
  }
  return wasm.makeOutput(filterShape, x.dtype, undefined, output);
}
