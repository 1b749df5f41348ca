import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendNative } from './backend.js';

/** The addon's fused layer kernels (src/native/fused-kernels.cc); each writes into arrays the caller allocates. */
export type FusedAddonFunctions = {
  /** x, out [rows, columns], weight [columns], inverse [rows] (receives (mean(x²) + eps)^−½). */
  rmsNorm(x: Float32Array, weight: Float32Array, out: Float32Array, inverse: Float32Array, rows: number, columns: number, eps: number): void;
  rmsNormGrad(dy: Float32Array, x: Float32Array, inverse: Float32Array, weight: Float32Array, dx: Float32Array, dWeight: Float32Array | null, rows: number, columns: number): void;
  swiGlu(gate: Float32Array, up: Float32Array, out: Float32Array): void;
  swiGluGrad(dy: Float32Array, gate: Float32Array, up: Float32Array, dGate: Float32Array, dUp: Float32Array): void;
};

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: MathBackendNative; attrs?: tf.NamedAttrMap };

const kernel = (kernelFunc: (args: KernelArguments) => tf.TensorInfo[]) => kernelFunc as unknown as tf.KernelFunc;

function requireFloat32(kernelName: string, inputs: tf.NamedTensorInfoMap) {
  for (const [name, tensor] of Object.entries(inputs)) {
    if (tensor?.dtype !== 'float32') throw new Error(`${kernelName}: input '${name}' must be float32, got ${tensor?.dtype}`);
  }
}

function requireSameShape(kernelName: string, first: tf.TensorInfo, ...others: tf.TensorInfo[]) {
  for (const other of others) {
    if (!tf.util.arraysEqual(first.shape, other.shape)) throw new Error(`${kernelName}: inputs must share one shape, got [${first.shape}] and [${other.shape}]`);
  }
}

/** Rows and columns of an RMSNorm input, with the weight checked against the last axis. */
function normLayout(kernelName: string, x: tf.TensorInfo, weight: tf.TensorInfo) {
  const columns = x.shape[x.shape.length - 1] ?? 0;
  if (x.shape.length === 0 || columns === 0 || tf.util.sizeFromShape(weight.shape) !== columns) {
    throw new Error(`${kernelName}: weight must have the input's last axis (${columns}) elements, got [${weight.shape}]`);
  }
  return { rows: tf.util.sizeFromShape(x.shape) / columns, columns, inverseShape: [...x.shape.slice(0, -1), 1] };
}

/**
 * Kernels of whole layer steps, under names ops dispatch to when the active backend registers them (else they run
 * their tf-op composition): `PeftRmsNorm` (x, weight; eps) → [y, inverse]; `PeftRmsNormGrad` (dy, x, inverse,
 * weight; trainable) → [dx] or [dx, dWeight]; `PeftSwiGlu` (gate, up) → [silu(gate)·up]; `PeftSwiGluGrad` (dy, gate,
 * up) → [dGate, dUp].
 */
export function fusedKernels(): { kernelName: string; kernelFunc: tf.KernelFunc }[] {
  return [
    {
      kernelName: 'PeftRmsNorm',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        requireFloat32('PeftRmsNorm', inputs);
        const { x, weight } = inputs as { x: tf.TensorInfo; weight: tf.TensorInfo };
        const { rows, columns, inverseShape } = normLayout('PeftRmsNorm', x, weight);
        const inverse = new Float32Array(rows);
        const out = backend.output([...x.shape], (values) => backend.addon.rmsNorm(backend.floats(x), backend.floats(weight), values, inverse, rows, columns, Number(attrs!.eps)));
        return [out, backend.makeTensorInfo(inverseShape, 'float32', inverse)];
      }),
    },
    {
      kernelName: 'PeftRmsNormGrad',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        requireFloat32('PeftRmsNormGrad', inputs);
        const { dy, x, inverse, weight } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo; inverse: tf.TensorInfo; weight: tf.TensorInfo };
        requireSameShape('PeftRmsNormGrad', x, dy);
        const { rows, columns } = normLayout('PeftRmsNormGrad', x, weight);
        const dWeight = attrs!.trainable ? new Float32Array(columns) : null;
        const dx = backend.output([...x.shape], (values) =>
          backend.addon.rmsNormGrad(backend.floats(dy), backend.floats(x), backend.floats(inverse), backend.floats(weight), values, dWeight, rows, columns),
        );
        return dWeight ? [dx, backend.makeTensorInfo([...weight.shape], 'float32', dWeight)] : [dx];
      }),
    },
    {
      kernelName: 'PeftSwiGlu',
      kernelFunc: kernel(({ inputs, backend }) => {
        requireFloat32('PeftSwiGlu', inputs);
        const { gate, up } = inputs as { gate: tf.TensorInfo; up: tf.TensorInfo };
        requireSameShape('PeftSwiGlu', gate, up);
        return [backend.output([...gate.shape], (out) => backend.addon.swiGlu(backend.floats(gate), backend.floats(up), out))];
      }),
    },
    {
      kernelName: 'PeftSwiGluGrad',
      kernelFunc: kernel(({ inputs, backend }) => {
        requireFloat32('PeftSwiGluGrad', inputs);
        const { dy, gate, up } = inputs as { dy: tf.TensorInfo; gate: tf.TensorInfo; up: tf.TensorInfo };
        requireSameShape('PeftSwiGluGrad', gate, up, dy);
        const dUp = new Float32Array(tf.util.sizeFromShape(gate.shape));
        const dGate = backend.output([...gate.shape], (out) => backend.addon.swiGluGrad(backend.floats(dy), backend.floats(gate), backend.floats(up), out, dUp));
        return [dGate, backend.makeTensorInfo([...gate.shape], 'float32', dUp)];
      }),
    },
  ];
}
