import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendNative } from './backend.js';

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: MathBackendNative; attrs?: tf.NamedAttrMap };
type NativeKernel = { kernelName: string; kernelFunc: tf.KernelFunc };

/** A kernel function over this backend's arguments, as tfjs registers it. */
const kernel = (kernelFunc: (args: KernelArguments) => tf.TensorInfo | tf.TensorInfo[]) => kernelFunc as unknown as tf.KernelFunc;

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

const isFloat = (...tensors: (tf.TensorInfo | undefined)[]) => tensors.every((tensor) => !tensor || tensor.dtype === 'float32');

const runCpu = (kernelName: string, args: KernelArguments) => cpuKernel(kernelName)(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;

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

/** The kernels registered over tfjs-backend-cpu's for the native backend. */
export function nativeKernels(): NativeKernel[] {
  return [
    { kernelName: tf.BatchMatMul, kernelFunc: kernel(batchMatMul) },
    { kernelName: tf._FusedMatMul, kernelFunc: kernel(fusedMatMul) },
  ];
}
