import * as tf from '@tensorflow/tfjs-core';
import { isFloat, kernel, runCpu, type KernelArguments, type NativeKernel } from './kernels.js';

/**
 * tfjs' GatherV2 (any axis, batchDims) over float32 or int32 tensors: slices copied whole. Indices outside the axis
 * throw tfjs-backend-cpu's error.
 */
function gatherV2(args: KernelArguments): tf.TensorInfo {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
  const backend = args.backend;
  const values = backend.data.get(x.dataId).values;
  const indexValues = backend.data.get(indices.dataId).values;
  if (!(values instanceof Float32Array || values instanceof Int32Array) || !(indexValues instanceof Int32Array)) return runCpu(tf.GatherV2, args);
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0];
  const axisSize = x.shape[parsedAxis];
  const outside = indexValues.findIndex((index) => index < 0 || index >= axisSize);
  if (outside >= 0) throw new Error(`GatherV2: the index value ${indexValues[outside]} is not in [0, ${axisSize - 1}]`);
  const shapeInfo = tf.backend_util.segment_util.collectGatherOpShapeInfo(x, indices, parsedAxis, batchDims ?? 0);
  const size = tf.util.sizeFromShape(shapeInfo.outputShape);
  if (size === 0 || shapeInfo.batchSize === 0) return runCpu(tf.GatherV2, args);
  const out = values instanceof Float32Array ? new Float32Array(size) : new Int32Array(size);
  backend.addon.gather(values, indexValues, out, shapeInfo.batchSize, shapeInfo.outerSize, shapeInfo.dimSize, shapeInfo.sliceSize);
  return backend.makeTensorInfo(shapeInfo.outputShape, x.dtype, out);
}

/** UnsortedSegmentSum with 1-D ids (gather's gradient): tfjs-backend-cpu's sums, without a masked pass per segment. */
function unsortedSegmentSum(args: KernelArguments): tf.TensorInfo {
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = args.attrs as unknown as tf.UnsortedSegmentSumAttrs;
  const backend = args.backend;
  const ids = backend.data.get(segmentIds.dataId).values;
  if (!isFloat(x) || segmentIds.shape.length !== 1 || x.shape.length === 0 || !(ids instanceof Int32Array)) return runCpu(tf.UnsortedSegmentSum, args);
  const columns = tf.util.sizeFromShape(x.shape.slice(1));
  return backend.output([numSegments, ...x.shape.slice(1)], (out) => backend.addon.segmentSum(backend.floats(x), ids, out, numSegments, columns));
}

/** The addon's convolution geometry: these fields of tfjs' Conv2DInfo, in this order, then the top and left padding. */
const CONV_GEOMETRY_FIELDS = [
  'batchSize', 'inHeight', 'inWidth', 'inChannels', 'outHeight', 'outWidth', 'outChannels',
  'filterHeight', 'filterWidth', 'strideHeight', 'strideWidth', 'dilationHeight', 'dilationWidth',
] as const;

/** The geometry the addon takes, or null (then cpu's kernel runs) for NCHW or an empty tensor. */
function convGeometry(info: tf.backend_util.Conv2DInfo): Int32Array | null {
  if (info.dataFormat !== 'channelsLast' || [info.inShape, info.outShape, info.filterShape].some((shape) => tf.util.sizeFromShape(shape) === 0)) return null;
  return Int32Array.from([...CONV_GEOMETRY_FIELDS.map((field) => info[field]), info.padInfo.top, info.padInfo.left]);
}

const convInfo = (inShape: number[], filterShape: number[], attrs: tf.Conv2DAttrs | tf.Conv2DBackpropInputAttrs | tf.Conv2DBackpropFilterAttrs, dilations: tf.Conv2DAttrs['dilations']) =>
  tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(attrs.dataFormat),
  );

/** NHWC Conv2D (strides, dilations, valid/same/explicit padding, as tfjs computes them) as im2col tiles times the filter. */
function conv2d(args: KernelArguments): tf.TensorInfo {
  const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DAttrs;
  const info = convInfo(x.shape, filter.shape, attrs, attrs.dilations);
  const geometry = isFloat(x, filter) ? convGeometry(info) : null;
  if (!geometry) return runCpu(tf.Conv2D, args);
  const backend = args.backend;
  return backend.output(info.outShape, (out) => backend.addon.conv2d(backend.floats(x), backend.floats(filter), out, geometry));
}

/** Conv2D's input gradient: dy times the filter transposed, added back onto the input pixels (col2im). */
function conv2dBackpropInput(args: KernelArguments): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const info = convInfo(attrs.inputShape, filter.shape, attrs, 1);
  const geometry = isFloat(dy, filter) ? convGeometry(info) : null;
  if (!geometry) return runCpu(tf.Conv2DBackpropInput, args);
  const backend = args.backend;
  return backend.output(info.inShape, (dx) => backend.addon.conv2dBackpropInput(backend.floats(dy), backend.floats(filter), dx, geometry));
}

/** Conv2D's filter gradient: the im2col tiles of x transposed times dy, summed over the tiles. */
function conv2dBackpropFilter(args: KernelArguments): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = convInfo(x.shape, attrs.filterShape, attrs, 1);
  const geometry = isFloat(x, dy) ? convGeometry(info) : null;
  if (!geometry) return runCpu(tf.Conv2DBackpropFilter, args);
  const backend = args.backend;
  return backend.output(info.filterShape, (dw) => backend.addon.conv2dBackpropFilter(backend.floats(x), backend.floats(dy), dw, geometry));
}

/** The gather and convolution kernels registered over tfjs-backend-cpu's for the native backend. */
export function gatherConvKernels(): NativeKernel[] {
  return [
    { kernelName: tf.GatherV2, kernelFunc: kernel(gatherV2) },
    { kernelName: tf.UnsortedSegmentSum, kernelFunc: kernel(unsortedSegmentSum) },
    { kernelName: tf.Conv2D, kernelFunc: kernel(conv2d) },
    { kernelName: tf.Conv2DBackpropInput, kernelFunc: kernel(conv2dBackpropInput) },
    { kernelName: tf.Conv2DBackpropFilter, kernelFunc: kernel(conv2dBackpropFilter) },
  ];
}
