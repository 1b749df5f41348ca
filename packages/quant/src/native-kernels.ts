import * as tf from '@tensorflow/tfjs-core';
import { bytesOfWords } from './packed-words.js';

/**
 * The quantized layers' kernels on `@peft-ts/backend-native`, whose backend object carries the quantized products
 * (dequantizing one weight tile at a time into a small buffer for OpenBLAS, so the float weight is never whole): the
 * same kernel names, inputs and attributes as the WebGPU kernels, plus an int8 product the 8-bit layer calls there.
 */
export const MATMUL_INT8_KERNEL = 'PeftMatMulInt8';

type FourBitLayout = { readonly weightRows: number; readonly weightColumns: number; readonly blockShift: number };
export type Int8Layout = { readonly weightRows: number; readonly weightColumns: number; readonly offset: number };
type FourBitOperands = { readonly packed: tf.TensorInfo; readonly absmax: tf.TensorInfo; readonly code: tf.TensorInfo };

/** What the kernels use of `MathBackendNative` (see @peft-ts/backend-native). */
type NativeBackendLike = {
  matMul4bit(x: tf.TensorInfo, weight: FourBitOperands, layout: FourBitLayout, transposeWeight: boolean): tf.TensorInfo;
  dequantize4bit(weight: FourBitOperands, layout: FourBitLayout): tf.TensorInfo;
  matMulInt8(x: tf.TensorInfo, packed: tf.TensorInfo, rowScales: tf.TensorInfo | null, layout: Int8Layout, transposeWeight: boolean): tf.TensorInfo;
  int8Codes(packed: tf.TensorInfo, layout: Int8Layout): tf.TensorInfo;
  words(tensor: tf.TensorInfo): Int32Array;
  floats(tensor: tf.TensorInfo): Float32Array;
  output(shape: number[], write: (out: Float32Array) => void): tf.TensorInfo;
};

export const NATIVE_BACKEND = 'native';

type Names = { readonly dequantize4bit: string; readonly matMul4bit: string; readonly int8Codes: string; readonly nestedAbsmax: string };

function input(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo {
  const tensor = inputs[name];
  if (!tensor) throw new Error(`a quantization kernel's input '${name}' is missing`);
  return tensor;
}

const fourBitOperands = (inputs: tf.NamedTensorInfoMap): FourBitOperands => ({ packed: input(inputs, 'packed'), absmax: input(inputs, 'absmax'), code: input(inputs, 'code') });

/** Registers the kernels for the native backend under the names the WebGPU ones use (and the int8 product). */
export function registerNativeKernels(names: Names): void {
  const kernels: [string, tf.KernelFunc][] = [
    [
      names.matMul4bit,
      ({ inputs, backend, attrs }) => {
        const { transposeWeight, ...layout } = attrs as unknown as FourBitLayout & { transposeWeight: boolean };
        return (backend as unknown as NativeBackendLike).matMul4bit(input(inputs, 'x'), fourBitOperands(inputs), layout, transposeWeight);
      },
    ],
    [names.dequantize4bit, ({ inputs, backend, attrs }) => (backend as unknown as NativeBackendLike).dequantize4bit(fourBitOperands(inputs), attrs as unknown as FourBitLayout)],
    [
      names.int8Codes,
      ({ inputs, backend, attrs }) => {
        const { rows, columns, offset } = attrs as unknown as { rows: number; columns: number; offset: number };
        return (backend as unknown as NativeBackendLike).int8Codes(input(inputs, 'packed'), { weightRows: rows, weightColumns: columns, offset });
      },
    ],
    [
      names.nestedAbsmax,
      ({ inputs, backend, attrs }) => {
        // One value per 4-bit block (1/64 of the weight or fewer): a host loop, one fp32 multiply each.
        const native = backend as unknown as NativeBackendLike;
        const { blocks, blockShift } = attrs as unknown as { blocks: number; blockShift: number };
        const codes = bytesOfWords(native.words(input(inputs, 'codes')), blocks);
        const map = native.floats(input(inputs, 'map'));
        const scales = native.floats(input(inputs, 'scales'));
        return native.output([blocks], (out) => {
          for (let block = 0; block < blocks; block++) out[block] = map[codes[block]] * scales[block >> blockShift];
        });
      },
    ],
    [
      MATMUL_INT8_KERNEL,
      ({ inputs, backend, attrs }) => {
        const { transposeWeight, ...layout } = attrs as unknown as Int8Layout & { transposeWeight: boolean };
        return (backend as unknown as NativeBackendLike).matMulInt8(input(inputs, 'x'), input(inputs, 'packed'), inputs.rowScales ?? null, layout, transposeWeight);
      },
    ],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    if (!tf.getKernel(kernelName, NATIVE_BACKEND)) tf.registerKernel({ kernelName, backendName: NATIVE_BACKEND, kernelFunc });
  }
}
