import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * The wasm backend lacks the kernels behind two gradients we need: UnsortedSegmentSum (the
 * gradient of gather, i.e. of every embedding lookup) and Conv2DBackpropFilter (the gradient of
 * a conv weight). These plain-JS versions run on wasm memory; they are only on backward paths.
 */
export function registerWasmFallbackKernels(): void {
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum });
  }
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2dBackpropFilter });
  }
}

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

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
