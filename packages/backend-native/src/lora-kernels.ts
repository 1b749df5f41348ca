import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendNative } from './backend.js';

/** The addon's LoRA linear kernels (src/native/lora-kernels.cc); each writes into arrays the caller allocates. */
export type LoraAddonFunctions = {
  /** out = x·Wᵀ (+ bias) + scaling·down·Bᵀ, down = dropped·Aᵀ (dropped null: x itself). */
  loraLinear(
    x: Float32Array, dropped: Float32Array | null, weight: Float32Array, bias: Float32Array | null, loraA: Float32Array, loraB: Float32Array,
    out: Float32Array, down: Float32Array, rows: number, inFeatures: number, outFeatures: number, rank: number, scaling: number,
  ): void;
  /** dx = dy·W (+ scaling·dy·B·A, unless dDropped takes that term), dA = scaling·(dy·B)ᵀ·dropped, dB = scaling·dyᵀ·down. */
  loraLinearGrad(
    dy: Float32Array, weight: Float32Array, loraA: Float32Array, loraB: Float32Array, down: Float32Array, dropped: Float32Array,
    dx: Float32Array, dDropped: Float32Array | null, dA: Float32Array, dB: Float32Array,
    rows: number, inFeatures: number, outFeatures: number, rank: number, scaling: number,
  ): void;
  /** norms[i] = ‖weight[i] + scaling·left[i]·right‖; weight [rows, columns], left [rows, rank], right [rank, columns]. */
  lowRankRowNorms(weight: Float32Array, left: Float32Array, right: Float32Array, norms: Float32Array, rows: number, columns: number, rank: number, scaling: number): void;
};

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: MathBackendNative; attrs?: tf.NamedAttrMap };

const kernel = (kernelFunc: (args: KernelArguments) => tf.TensorInfo[]) => kernelFunc as unknown as tf.KernelFunc;

/** [rows, inFeatures, outFeatures, rank] of a LoRA linear, each operand checked against them. */
function loraLayout(kernelName: string, inputs: tf.NamedTensorInfoMap, rowsOf: tf.TensorInfo, rowWidth: number) {
  for (const [name, tensor] of Object.entries(inputs)) {
    if (tensor && tensor.dtype !== 'float32') throw new Error(`${kernelName}: input '${name}' must be float32, got ${tensor.dtype}`);
  }
  const { weight, loraA, loraB } = inputs as { weight: tf.TensorInfo; loraA: tf.TensorInfo; loraB: tf.TensorInfo };
  const [outFeatures, inFeatures] = weight.shape;
  const rank = loraA.shape[0];
  const expect = (name: string, tensor: tf.TensorInfo | undefined, shape: number[]) => {
    if (tensor && !tf.util.arraysEqual(tensor.shape, shape)) throw new Error(`${kernelName}: ${name} must be [${shape}], got [${tensor.shape}]`);
  };
  if (weight.shape.length !== 2) throw new Error(`${kernelName}: weight must be [outFeatures, inFeatures], got [${weight.shape}]`);
  expect('loraA', loraA, [rank, inFeatures]);
  expect('loraB', loraB, [outFeatures, rank]);
  expect('bias', inputs.bias, [outFeatures]);
  const width = rowsOf.shape[rowsOf.shape.length - 1];
  if (rowsOf.shape.length < 1 || width !== rowWidth) throw new Error(`${kernelName}: the last axis of [${rowsOf.shape}] must be ${rowWidth}`);
  const leading = rowsOf.shape.slice(0, -1);
  return { rows: tf.util.sizeFromShape(leading), leading, inFeatures, outFeatures, rank };
}

/**
 * A LoRA linear layer on a frozen base weight: `PeftLoraLinear` (x [..., in], weight [out, in], loraA [r, in],
 * loraB [out, r], optional bias [out] and dropped (x after the adapter's dropout, x's shape); scaling) → [y, down],
 * y = x·Wᵀ (+ bias) + scaling·down·Bᵀ, down = dropped·Aᵀ [..., r], kept for the gradient. `PeftLoraLinearGrad` (dy,
 * weight, loraA, loraB, down, dropped (x when there was no dropout); scaling, dropout) → [dx, dA, dB], plus
 * d dropped when `dropout` (dx then holds the base term only). `PeftLowRankRowNorms` (weight [rows, columns], left
 * [rows, r], right [r, columns]; scaling) → [‖W + scaling·left·right‖ per row], DoRA's weight norm, without the
 * merged weight ever existing whole (it has no gradient: DoRA detaches the norm).
 */
export function loraKernels(): { kernelName: string; kernelFunc: tf.KernelFunc }[] {
  return [
    {
      kernelName: 'PeftLoraLinear',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        const { x, dropped, bias, weight, loraA, loraB } = inputs as Record<string, tf.TensorInfo>;
        const { rows, leading, inFeatures, outFeatures, rank } = loraLayout('PeftLoraLinear', inputs, x, weight.shape[1]);
        if (dropped && !tf.util.arraysEqual(dropped.shape, x.shape)) throw new Error(`PeftLoraLinear: dropped must be x's shape [${x.shape}], got [${dropped.shape}]`);
        let down!: tf.TensorInfo;
        const y = backend.output([...leading, outFeatures], (out) => {
          down = backend.output([...leading, rank], (downValues) =>
            backend.addon.loraLinear(
              backend.floats(x), dropped ? backend.floats(dropped) : null, backend.floats(weight), bias ? backend.floats(bias) : null,
              backend.floats(loraA), backend.floats(loraB), out, downValues, rows, inFeatures, outFeatures, rank, Number(attrs!.scaling),
            ),
          );
        });
        return [y, down];
      }),
    },
    {
      kernelName: 'PeftLoraLinearGrad',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        const { dy, weight, loraA, loraB, down, dropped } = inputs as Record<string, tf.TensorInfo>;
        const { rows, leading, inFeatures, outFeatures, rank } = loraLayout('PeftLoraLinearGrad', inputs, dy, weight.shape[0]);
        if (!tf.util.arraysEqual(down.shape, [...leading, rank]) || !tf.util.arraysEqual(dropped.shape, [...leading, inFeatures])) {
          throw new Error(`PeftLoraLinearGrad: down must be [${[...leading, rank]}] and dropped [${[...leading, inFeatures]}], got [${down.shape}] and [${dropped.shape}]`);
        }
        const separate = Boolean(attrs!.dropout);
        const dA = new Float32Array(rank * inFeatures);
        const dB = new Float32Array(outFeatures * rank);
        let dDropped: tf.TensorInfo | undefined;
        const write = (dx: Float32Array, dDroppedValues: Float32Array | null) =>
          backend.addon.loraLinearGrad(
            backend.floats(dy), backend.floats(weight), backend.floats(loraA), backend.floats(loraB), backend.floats(down), backend.floats(dropped),
            dx, dDroppedValues, dA, dB, rows, inFeatures, outFeatures, rank, Number(attrs!.scaling),
          );
        const dx = backend.output([...dropped.shape], (dxValues) => {
          if (separate) dDropped = backend.output([...dropped.shape], (values) => write(dxValues, values));
          else write(dxValues, null);
        });
        const factorGradients = [backend.makeTensorInfo([...loraA.shape], 'float32', dA), backend.makeTensorInfo([...loraB.shape], 'float32', dB)];
        return dDropped ? [dx, ...factorGradients, dDropped] : [dx, ...factorGradients];
      }),
    },
    {
      kernelName: 'PeftLowRankRowNorms',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        const { weight, left, right } = inputs as Record<string, tf.TensorInfo>;
        for (const [name, tensor] of Object.entries(inputs)) {
          if (tensor?.dtype !== 'float32') throw new Error(`PeftLowRankRowNorms: input '${name}' must be float32, got ${tensor?.dtype}`);
        }
        const [rows, columns] = weight.shape;
        const rank = right.shape[0];
        if (weight.shape.length !== 2 || !tf.util.arraysEqual(left.shape, [rows, rank]) || !tf.util.arraysEqual(right.shape, [rank, columns])) {
          throw new Error(`PeftLowRankRowNorms: expected weight [rows, columns], left [rows, r] and right [r, columns], got [${weight.shape}], [${left.shape}] and [${right.shape}]`);
        }
        return [
          backend.output([rows], (norms) =>
            backend.addon.lowRankRowNorms(backend.floats(weight), backend.floats(left), backend.floats(right), norms, rows, columns, rank, Number(attrs!.scaling)),
          ),
        ];
      }),
    },
  ];
}
