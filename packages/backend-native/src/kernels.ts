import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendNative } from './backend.js';

export type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: MathBackendNative; attrs?: tf.NamedAttrMap };
export type NativeKernel = { kernelName: string; kernelFunc: tf.KernelFunc };

/** A kernel function over this backend's arguments, as tfjs registers it. */
export const kernel = (kernelFunc: (args: KernelArguments) => tf.TensorInfo | tf.TensorInfo[]) => kernelFunc as unknown as tf.KernelFunc;

/** tfjs-backend-cpu's kernel of that name, for the cases a native kernel leaves to it. */
function cpuKernel(kernelName: string): tf.KernelFunc {
  const config = tf.getKernel(kernelName, 'cpu');
  if (!config) throw new Error(`tfjs-backend-cpu registers no ${kernelName} kernel`);
  return config.kernelFunc;
}

/** A product's operands in tfjs' BatchMatMul terms: a batch of each (the outer dims flattened), then m × k · k × n. */
function productShape(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean) {
  const [aRank, bRank] = [a.shape.length, b.shape.length];
  const k = transposeA ? a.shape[aRank - 2] : a.shape[aRank - 1];
  const innerB = transposeB ? b.shape[bRank - 1] : b.shape[bRank - 2];
  const m = transposeA ? a.shape[aRank - 1] : a.shape[aRank - 2];
  const n = transposeB ? b.shape[bRank - 2] : b.shape[bRank - 1];
  tf.util.assert(
    k === innerB,
    () => `Error in matMul: inner shapes (${k}) and (${innerB}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
  );
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  return { batchA, batchB, m, n, k, shape: [...outer, m, n] };
}

function product(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean, backend: MathBackendNative): tf.TensorInfo {
  const { batchA, batchB, m, n, k, shape } = productShape(a, b, transposeA, transposeB);
  return backend.output(shape, (out) => backend.addon.batchMatMul(backend.floats(a), backend.floats(b), out, batchA, batchB, m, n, k, transposeA, transposeB));
}

export const isFloat = (...tensors: (tf.TensorInfo | undefined)[]) => tensors.every((tensor) => !tensor || tensor.dtype === 'float32');

export const runCpu = (kernelName: string, args: KernelArguments) => cpuKernel(kernelName)(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;

/** tfjs' BatchMatMul (and so MatMul, whose op lowers to it): transposes as BLAS flags, batches broadcast as tfjs does. */
function batchMatMul(args: KernelArguments): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  if (!isFloat(a, b)) return runCpu(tf.BatchMatMul, args);
  return product(a, b, transposeA, transposeB, args.backend);
}

/** The activations the addon applies in place (its `Activation` enum); prelu takes a tensor and goes through cpu's kernel. */
const ACTIVATION_CODES: Partial<Record<string, number>> = { linear: 0, relu: 1, relu6: 2, sigmoid: 3, leakyrelu: 4, elu: 5 };

/** `act(op(a)·op(b) + bias)`: the product natively, a bias along the last axis and the activation in place after it. */
function fusedMatMul(args: KernelArguments): tf.TensorInfo {
  const { a, b, bias, preluActivationWeights } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
  const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as unknown as tf._FusedMatMulAttrs;
  if (!isFloat(a, b, bias, preluActivationWeights)) return runCpu(tf._FusedMatMul, args);
  const backend = args.backend;
  let result = product(a, b, transposeA, transposeB, backend);
  const n = result.shape[result.shape.length - 1];
  // A bias of one value, or of the last axis broadcast over the rows, is added in place; any other goes through Add.
  const rowBias = bias && (bias.shape.length <= result.shape.length && (tf.util.sizeFromShape(bias.shape) === 1 || (bias.shape[bias.shape.length - 1] === n && tf.util.sizeFromShape(bias.shape) === n)));
  if (bias && !rowBias) {
    const sum = runCpu(tf.Add, { inputs: { a: result, b: bias }, backend });
    backend.disposeIntermediateTensorInfo(result);
    result = sum;
  }
  const code = ACTIVATION_CODES[activation];
  if (code === undefined) {
    if (activation !== 'prelu' || !preluActivationWeights) throw new Error(`native _FusedMatMul: unknown activation '${activation}'`);
    const activated = runCpu(tf.Prelu, { inputs: { x: result, alpha: preluActivationWeights }, backend });
    backend.disposeIntermediateTensorInfo(result);
    return activated;
  }
  if (rowBias || code !== 0) backend.addon.biasActivation(backend.floats(result), rowBias ? backend.floats(bias) : null, code, leakyreluAlpha ?? 0);
  return result;
}

/** The addon's BinaryOp codes; the ops tfjs-backend-cpu runs through generic per-element index arithmetic when broadcasting. */
const BINARY_CODES: Record<string, number> = { [tf.Add]: 0, [tf.Sub]: 1, [tf.Multiply]: 2, [tf.RealDiv]: 3, [tf.Maximum]: 4, [tf.Minimum]: 5, [tf.SquaredDifference]: 6 };

/**
 * The broadcast as few axes as possible: neighbouring axes merge where both operands step through them as one
 * (contiguous in each, or broadcast in each), so the addon's innermost loop runs as long as it can.
 */
function broadcastLayout(aShape: number[], bShape: number[], shape: number[]) {
  const strides = (operand: number[]) => {
    const result = new Array<number>(shape.length).fill(0);
    let stride = 1;
    for (let axis = operand.length - 1; axis >= 0; axis--) {
      result[axis + shape.length - operand.length] = operand[axis] === 1 ? 0 : stride;
      stride *= operand[axis];
    }
    return result;
  };
  const [aStrides, bStrides] = [strides(aShape), strides(bShape)];
  const merged: { extent: number; a: number; b: number }[] = [];
  for (let axis = 0; axis < shape.length; axis++) {
    if (shape[axis] === 1) continue;
    const last = merged[merged.length - 1];
    if (last && last.a === aStrides[axis] * shape[axis] && last.b === bStrides[axis] * shape[axis]) {
      last.extent *= shape[axis];
      last.a = aStrides[axis];
      last.b = bStrides[axis];
    } else {
      merged.push({ extent: shape[axis], a: aStrides[axis], b: bStrides[axis] });
    }
  }
  return {
    shape: Int32Array.from(merged, (axis) => axis.extent),
    aStrides: Int32Array.from(merged, (axis) => axis.a),
    bStrides: Int32Array.from(merged, (axis) => axis.b),
  };
}

function binaryKernel(kernelName: string): NativeKernel {
  const code = BINARY_CODES[kernelName];
  return {
    kernelName,
    kernelFunc: kernel((args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      if (!isFloat(a, b)) return runCpu(kernelName, args);
      const backend = args.backend;
      const shape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const layout = broadcastLayout(a.shape, b.shape, shape);
      return backend.output(shape, (out) => backend.addon.binary(code, backend.floats(a), backend.floats(b), out, layout.shape, layout.aStrides, layout.bStrides));
    }),
  };
}

/** The addon's UnaryOp codes. */
const UNARY_CODES: Record<string, number> = { [tf.Exp]: 0, [tf.Neg]: 1, [tf.Sqrt]: 2, [tf.Rsqrt]: 3, [tf.Square]: 4, [tf.Abs]: 5, [tf.Log]: 6, [tf.Sigmoid]: 7 };

function unaryKernel(kernelName: string): NativeKernel {
  const code = UNARY_CODES[kernelName];
  return {
    kernelName,
    kernelFunc: kernel((args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      if (!isFloat(x)) return runCpu(kernelName, args);
      const backend = args.backend;
      return backend.output([...x.shape], (out) => backend.addon.unary(code, backend.floats(x), out));
    }),
  };
}

function softmax(args: KernelArguments): tf.TensorInfo {
  const { logits } = args.inputs as { logits: tf.TensorInfo };
  const { dim } = args.attrs as unknown as tf.SoftmaxAttrs;
  const rank = logits.shape.length;
  if (!isFloat(logits) || rank === 0 || (dim !== -1 && dim !== rank - 1)) return runCpu(tf.Softmax, args);
  const backend = args.backend;
  const columns = logits.shape[rank - 1];
  const rows = columns === 0 ? 0 : tf.util.sizeFromShape(logits.shape) / columns;
  return backend.output([...logits.shape], (out) => backend.addon.softmax(backend.floats(logits), out, rows, columns));
}

function transpose(args: KernelArguments): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { perm } = args.attrs as unknown as tf.TransposeAttrs;
  const backend = args.backend;
  const values = backend.data.get(x.dataId).values;
  if (!(values instanceof Float32Array || values instanceof Int32Array)) return runCpu(tf.Transpose, args);
  const inputStrides = [...tf.util.computeStrides(x.shape), 1];
  const shape = perm.map((axis) => x.shape[axis]);
  const [outShape, outStrides] = [Int32Array.from(shape), Int32Array.from(perm, (axis) => inputStrides[axis])];
  if (values instanceof Float32Array && x.dtype === 'float32') return backend.output(shape, (out) => backend.addon.transpose(values, out, outShape, outStrides));
  const out = values instanceof Float32Array ? new Float32Array(values.length) : new Int32Array(values.length);
  backend.addon.transpose(values, out, outShape, outStrides);
  return backend.makeTensorInfo(shape, x.dtype, out);
}

/** The addon's ReduceOp codes. */
const REDUCE_CODES: Record<string, number> = { [tf.Sum]: 0, [tf.Mean]: 1, [tf.Max]: 2, [tf.Min]: 3 };

/**
 * A float32 reduction over any axes, as tfjs-backend-cpu computes it (Mean divides each element first, sums run in
 * double, in the order of the reduced axes) but without transposing them innermost first.
 */
function reduceKernel(kernelName: string): NativeKernel {
  const code = REDUCE_CODES[kernelName];
  return {
    kernelName,
    kernelFunc: kernel((args) => {
      const { x } = args.inputs as { x: tf.TensorInfo };
      const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
      // Max names its axes differently.
      const axes = tf.util.parseAxisParam(kernelName === tf.Max ? (args.attrs as unknown as tf.MaxAttrs).reductionIndices : axis, x.shape);
      const size = tf.util.sizeFromShape(x.shape);
      if (!isFloat(x) || size === 0 || axes.some((dimension) => x.shape[dimension] === 0)) return runCpu(kernelName, args);
      const strides = [...tf.util.computeStrides(x.shape), 1];
      const kept = x.shape.map((_, dimension) => dimension).filter((dimension) => !axes.includes(dimension));
      const reduced = [...axes].sort((first, second) => first - second);
      const outShape = keepDims ? x.shape.map((extent, dimension) => (axes.includes(dimension) ? 1 : extent)) : kept.map((dimension) => x.shape[dimension]);
      const backend = args.backend;
      const ints = (dimensions: number[], of: readonly number[]) => Int32Array.from(dimensions, (dimension) => of[dimension]);
      return backend.output(outShape, (out) =>
        backend.addon.reduce(code, backend.floats(x), out, ints(kept, x.shape), ints(kept, strides), ints(reduced, x.shape), ints(reduced, strides)),
      );
    }),
  };
}

/** The kernels registered over tfjs-backend-cpu's for the native backend. */
export function nativeKernels(): NativeKernel[] {
  return [
    { kernelName: tf.BatchMatMul, kernelFunc: kernel(batchMatMul) },
    { kernelName: tf._FusedMatMul, kernelFunc: kernel(fusedMatMul) },
    ...Object.keys(BINARY_CODES).map(binaryKernel),
    ...Object.keys(UNARY_CODES).map(unaryKernel),
    { kernelName: tf.Softmax, kernelFunc: kernel(softmax) },
    { kernelName: tf.Transpose, kernelFunc: kernel(transpose) },
    ...Object.keys(REDUCE_CODES).map(reduceKernel),
  ];
}
