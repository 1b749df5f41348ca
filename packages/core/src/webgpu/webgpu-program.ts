import type * as tf from '@tensorflow/tfjs-core';

/**
 * Helpers for the project's own WebGPU kernels. The programs are plain objects in the shape tfjs-backend-webgpu
 * compiles (its `WebGPUProgram`): tfjs writes the bindings (`result`, one array per input), the shape uniforms and
 * the `_start` entry point that calls `main`, so no import of the webgpu backend is needed.
 */

export type ProgramUniform = { type: 'int32'; data: number[] };

/** The part of tfjs-backend-webgpu's backend that runs a program. */
export type WebgpuBackendLike = {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: 'float32', uniforms: ProgramUniform[]): tf.TensorInfo;
};

const ELEMENTWISE_WORKGROUP = 256;

/** One thread per output element; `value` is a WGSL expression of the flat `index` (a u32). */
export function elementwiseProgram(
  shaderKey: string,
  variableNames: readonly string[],
  outputShape: number[],
  uniforms: string,
  functions: string,
  value: string,
) {
  const count = outputShape.reduce((product, size) => product * size, 1);
  return {
    variableNames: [...variableNames],
    uniforms,
    size: true,
    workgroupSize: [ELEMENTWISE_WORKGROUP, 1, 1] as [number, number, number],
    outputShape,
    dispatchLayout: { x: outputShape.map((_, axis) => axis) },
    dispatch: [Math.ceil(count / ELEMENTWISE_WORKGROUP), 1, 1] as [number, number, number],
    shaderKey,
    getUserCode: () => `
  ${functions}
  fn main(flatIndex : i32) {
    if (flatIndex < uniforms.size) {
      let index = u32(flatIndex);
      setOutputAtIndex(flatIndex, ${value});
    }
  }
`,
  };
}

/** A kernel's inputs in program order; `kernel` names the kernel in the error. */
export function namedInputs(inputs: tf.NamedTensorInfoMap, names: readonly string[], kernel: string): tf.TensorInfo[] {
  return names.map((name) => {
    const input = inputs[name];
    if (!input) throw new Error(`${kernel}: input '${name}' is missing`);
    return input;
  });
}
