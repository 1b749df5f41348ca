import * as tf from '@tensorflow/tfjs-core';
import { elementwiseProgram, namedInputs as kernelNamedInputs, type WebgpuBackendLike } from '@peft-ts/core/internal';
import { MATMUL_INT8_KERNEL, registerNativeKernels, type Int8Layout } from './native-kernels.js';

/**
 * WebGPU kernels of the quantized layers, registered with tfjs under their own names. For the 4-bit layer, one
 * dequantizes a packed weight, the other multiplies by it, dequantizing each weight tile into workgroup memory as
 * it goes, so the float weight is never materialised. Both compute each weight value as the one fp32 product
 * `code · absmax` of bnb's `dequantize_4bit`, so the dequantized weight equals the host loop's bit for bit and the
 * fused product differs from `matMul(x, dequantized)` only in summation order. For the 8-bit layer, one unpacks
 * its int8 codes from words into float32 (exact small integers).
 *
 * The programs are built with core's `elementwiseProgram` helpers (plain objects tfjs-backend-webgpu compiles).
 */

export const DEQUANTIZE_4BIT_KERNEL = 'PeftDequantize4bit';
export const MATMUL_4BIT_KERNEL = 'PeftMatMul4bit';
export const INT8_CODES_KERNEL = 'PeftInt8Codes';
export const NESTED_ABSMAX_KERNEL = 'PeftNestedAbsmax';

/** Backends these kernels are registered for: webgpu here, native in native-kernels.ts. */
export const FUSED_KERNEL_BACKENDS: ReadonlySet<string> = new Set(['webgpu', 'native']);

/** The inputs both kernels read: packed words (int32), fp32 absmax per block, and the 16 fp32 code values. */
export type FourBitKernelInputs = { readonly packed: tf.Tensor; readonly absmax: tf.Tensor; readonly code: tf.Tensor };

export type FourBitKernelAttributes = {
  /** The weight's [rows, columns] (bnb's [out, in]); its row-major flattening was quantized. */
  readonly weightRows: number;
  readonly weightColumns: number;
  /** log2 of the blocksize. */
  readonly blockShift: number;
};


const INPUT_NAMES = ['Packed', 'Absmax', 'Code'] as const;

const WEIGHT_VALUE = `
  // Nibble k of the flattened weight is the high nibble of byte k/2 when k is even; byte j of a word is bits 8j..8j+7.
  fn weightValue(flat : u32) -> f32 {
    let word = bitcast<u32>(Packed[flat >> 3u]);
    let shift = ((flat >> 1u) & 3u) * 8u + select(0u, 4u, (flat & 1u) == 0u);
    return Code[(word >> shift) & 15u] * Absmax[flat >> u32(uniforms.blockShift)];
  }
`;

/**
 * Output rows and columns of one workgroup's tile; 16 × 16 threads compute 4 × 4 adjacent outputs each, so a thread
 * reads its four inputs and its four weights of one inner index as one vec4 each from workgroup memory.
 */
const TILE = 64;
const THREADS_PER_SIDE = 16;
/** The slice of the inner dimension staged in workgroup memory per step (2 × 4 KiB). */
const INNER_TILE = 16;
const LOADS_PER_THREAD = (TILE * INNER_TILE) / (THREADS_PER_SIDE * THREADS_PER_SIDE);

/** Codes in one word: eight, so a tile step of 64 × 16 weights is 128 words. */
const WORDS_PER_TILE = (TILE * INNER_TILE) / 8;

const DECODE_WORD = `
  // The eight weights of the word at flat (a multiple of 8, so all in one block: blocks span at least 64).
  fn decodeWord(flat : u32) -> array<f32, 8> {
    let word = bitcast<u32>(Packed[flat >> 3u]);
    let scale = Absmax[flat >> u32(uniforms.blockShift)];
    var values : array<f32, 8>;
    for (var j = 0u; j < 8u; j++) {
      values[j] = Code[(word >> ((j >> 1u) * 8u + select(0u, 4u, (j & 1u) == 0u))) & 15u] * scale;
    }
    return values;
  }
`;

/**
 * How a workgroup fills its weight tile for one inner step. Rows of whole words (weight columns a multiple of 8):
 * 128 threads decode a word each, one word load and one absmax load for eight weights. Otherwise each thread
 * decodes four single weights. Either way neighbouring threads read neighbouring weight columns, the order in
 * which the codes are packed.
 */
function weightTileLoad(transposeWeight: boolean, wordAligned: boolean): string {
  if (!wordAligned) {
    const [weightRow, weightColumn, tileInner, tileColumn] = transposeWeight
      ? ['columnBase + element / INNER_TILE', 'innerBase + element % INNER_TILE', 'element % INNER_TILE', 'element / INNER_TILE']
      : ['innerBase + element / TILE', 'columnBase + element % TILE', 'element / TILE', 'element % TILE'];
    return `
      for (var load = 0; load < ${LOADS_PER_THREAD}; load++) {
        let element = i32(localIndex) + load * THREADS_PER_SIDE * THREADS_PER_SIDE;
        let weightRow = ${weightRow};
        let weightColumn = ${weightColumn};
        var weight = 0.0;
        if (weightRow < uniforms.weightRows && weightColumn < uniforms.weightColumns) {
          weight = weightValue(u32(weightRow) * u32(uniforms.weightColumns) + u32(weightColumn));
        }
        let tileColumn = ${tileColumn};
        weightTile[${tileInner}][tileColumn / 4][tileColumn % 4] = weight;
      }`;
  }
  // Forward: a word holds 8 inner indices of one output column; backward: 8 output columns of one inner index.
  const [placement, store] = transposeWeight
    ? [
        `let tileColumn = word / 2;
        let firstInner = (word % 2) * 8;
        let weightRow = columnBase + tileColumn;
        let weightColumn = innerBase + firstInner;`,
        `for (var j = 0; j < 8; j++) {
          weightTile[firstInner + j][tileColumn / 4][tileColumn % 4] = values[j];
        }`,
      ]
    : [
        `let tileInner = word / 8;
        let firstColumn = (word % 8) * 8;
        let weightRow = innerBase + tileInner;
        let weightColumn = columnBase + firstColumn;`,
        `weightTile[tileInner][firstColumn / 4] = vec4<f32>(values[0], values[1], values[2], values[3]);
        weightTile[tileInner][firstColumn / 4 + 1] = vec4<f32>(values[4], values[5], values[6], values[7]);`,
      ];
  return `
      if (localIndex < ${WORDS_PER_TILE}u) {
        let word = i32(localIndex);
        ${placement}
        var values : array<f32, 8>;
        if (weightRow < uniforms.weightRows && weightColumn < uniforms.weightColumns) {
          values = decodeWord(u32(weightRow) * u32(uniforms.weightColumns) + u32(weightColumn));
        }
        ${store}
      }`;
}

/** `x·Wᵀ` (transposeWeight, the forward) or `x·W` (its input gradient) for a 2-D x. */
function matMulProgram(outputShape: [number, number], transposeWeight: boolean, weightColumns: number) {
  const wordAligned = weightColumns % 8 === 0;
  return {
    variableNames: ['X', ...INPUT_NAMES],
    uniforms: 'rows : i32, inner : i32, columns : i32, weightRows : i32, weightColumns : i32, blockShift : i32,',
    workgroupSize: [THREADS_PER_SIDE, THREADS_PER_SIDE, 1] as [number, number, number],
    outputShape,
    dispatchLayout: { x: [1], y: [0] },
    dispatch: [Math.ceil(outputShape[1] / TILE), Math.ceil(outputShape[0] / TILE), 1] as [number, number, number],
    shaderKey: `peftMatMul4bit_${transposeWeight}_${wordAligned}`,
    getUserCode: () => `
  const TILE = ${TILE};
  const INNER_TILE = ${INNER_TILE};
  const THREADS_PER_SIDE = ${THREADS_PER_SIDE};
  // [inner][row / 4] with row % 4 as the component; the same for the weight's output columns.
  var<workgroup> inputTile : array<array<vec4<f32>, THREADS_PER_SIDE>, INNER_TILE>;
  var<workgroup> weightTile : array<array<vec4<f32>, THREADS_PER_SIDE>, INNER_TILE>;
  ${wordAligned ? DECODE_WORD : WEIGHT_VALUE}
  fn main() {
    let rowBase = i32(workgroupId.y) * TILE;
    let columnBase = i32(workgroupId.x) * TILE;
    let threadRow = i32(localId.y);
    let threadColumn = i32(localId.x);
    var sums : array<vec4<f32>, 4>;
    for (var innerBase = 0; innerBase < uniforms.inner; innerBase += INNER_TILE) {
      for (var load = 0; load < ${LOADS_PER_THREAD}; load++) {
        let element = i32(localIndex) + load * THREADS_PER_SIDE * THREADS_PER_SIDE;
        let tileRow = element / INNER_TILE;
        let row = rowBase + tileRow;
        let inner = innerBase + element % INNER_TILE;
        var input = 0.0;
        if (row < uniforms.rows && inner < uniforms.inner) {
          input = X[row * uniforms.inner + inner];
        }
        inputTile[element % INNER_TILE][tileRow / 4][tileRow % 4] = input;
      }${weightTileLoad(transposeWeight, wordAligned)}
      workgroupBarrier();
      for (var k = 0; k < INNER_TILE; k++) {
        let weights = weightTile[k][threadColumn];
        let inputs = inputTile[k][threadRow];
        sums[0] += inputs.x * weights;
        sums[1] += inputs.y * weights;
        sums[2] += inputs.z * weights;
        sums[3] += inputs.w * weights;
      }
      workgroupBarrier();
    }
    for (var r = 0; r < 4; r++) {
      let row = rowBase + threadRow * 4 + r;
      for (var c = 0; c < 4; c++) {
        let column = columnBase + threadColumn * 4 + c;
        if (row < uniforms.rows && column < uniforms.columns) {
          setOutputAtIndex(row * uniforms.columns + column, sums[r][c]);
        }
      }
    }
  }
`,
  };
}

const dequantizeProgram = (outputShape: number[]) =>
  elementwiseProgram('peftDequantize4bit', INPUT_NAMES, outputShape, 'blockShift : i32,', WEIGHT_VALUE, 'weightValue(index)');

/** Byte `index` of bytes stored four to a word, byte j of a word in bits 8j..8j+7. */
const BYTE_AT = `
  fn byteAt(index : u32) -> u32 {
    return (bitcast<u32>(Packed[index >> 2u]) >> ((index & 3u) * 8u)) & 255u;
  }
`;

/** Code j is stored as byte j, `code + offset` (offset binary). */
const int8CodesProgram = (outputShape: number[], offset: number) =>
  elementwiseProgram('peftInt8Codes', ['Packed'], outputShape, '', BYTE_AT, `f32(byteAt(index)) - ${offset}.0`);

/** `map[code] · scale[chunk]` per 4-bit block: double-quantized absmax before its offset is added. */
const nestedAbsmaxProgram = (blocks: number) =>
  elementwiseProgram('peftNestedAbsmax', ['Packed', 'Map', 'Scales'], [blocks], 'blockShift : i32,', BYTE_AT, 'Map[byteAt(index)] * Scales[index >> u32(uniforms.blockShift)]');

const namedInputs = (inputs: tf.NamedTensorInfoMap, names: readonly string[]) => kernelNamedInputs(inputs, names, 'a quantization kernel');

const kernelInputs = (inputs: tf.NamedTensorInfoMap) => namedInputs(inputs, ['packed', 'absmax', 'code']);

function registerKernels(): void {
  tf.registerKernel({
    kernelName: DEQUANTIZE_4BIT_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { weightRows, weightColumns, blockShift } = attrs as unknown as FourBitKernelAttributes;
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(dequantizeProgram([weightRows, weightColumns]), kernelInputs(inputs), 'float32', [
        { type: 'int32', data: [blockShift] },
      ]);
    },
  });
  tf.registerKernel({
    kernelName: MATMUL_4BIT_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { weightRows, weightColumns, blockShift, transposeWeight } = attrs as unknown as MatMul4bitAttributes;
      const [x] = namedInputs(inputs, ['x']);
      const [rows, inner] = x.shape;
      const columns = transposeWeight ? weightRows : weightColumns;
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(
        matMulProgram([rows, columns], transposeWeight, weightColumns),
        [x, ...kernelInputs(inputs)],
        'float32',
        [rows, inner, columns, weightRows, weightColumns, blockShift].map((value) => ({ type: 'int32', data: [value] })),
      );
    },
  });
  tf.registerKernel({
    kernelName: INT8_CODES_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { rows, columns, offset } = attrs as unknown as { rows: number; columns: number; offset: number };
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(int8CodesProgram([rows, columns], offset), namedInputs(inputs, ['packed']), 'float32', []);
    },
  });
  tf.registerKernel({
    kernelName: NESTED_ABSMAX_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { blocks, blockShift } = attrs as unknown as { blocks: number; blockShift: number };
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(nestedAbsmaxProgram(blocks), namedInputs(inputs, ['codes', 'map', 'scales']), 'float32', [
        { type: 'int32', data: [blockShift] },
      ]);
    },
  });
  // The weight is frozen (as in bnb): only the input gets a gradient, the same product with the weight untransposed.
  tf.registerGradient({
    kernelName: MATMUL_4BIT_KERNEL,
    inputsToSave: ['packed', 'absmax', 'code'],
    gradFunc: (dy, saved, attrs) => {
      const [packed, absmax, code] = saved;
      const { transposeWeight, ...weight } = attrs as unknown as MatMul4bitAttributes;
      return { x: () => matMul4bitKernel(dy as tf.Tensor, { packed, absmax, code }, weight, !transposeWeight) };
    },
  });
}

type MatMul4bitAttributes = FourBitKernelAttributes & { readonly transposeWeight: boolean };

let registered = false;

function ensureRegistered(): void {
  if (registered) return;
  registered = true;
  if (!tf.getKernel(MATMUL_4BIT_KERNEL, 'webgpu')) registerKernels();
  registerNativeKernels({
    dequantize4bit: DEQUANTIZE_4BIT_KERNEL,
    matMul4bit: MATMUL_4BIT_KERNEL,
    int8Codes: INT8_CODES_KERNEL,
    nestedAbsmax: NESTED_ABSMAX_KERNEL,
  });
}

/** The dequantized float32 [rows, columns] weight, on webgpu or native. */
export function dequantize4bitKernel(inputs: FourBitKernelInputs, attributes: FourBitKernelAttributes): tf.Tensor2D {
  ensureRegistered();
  return tf.engine().runKernel(DEQUANTIZE_4BIT_KERNEL, { ...inputs }, { ...attributes }) as tf.Tensor2D;
}

/** `x·Wᵀ` (or `x·W`) for a 2-D x without materialising W, on webgpu or native; differentiable in x. */
export function matMul4bitKernel(
  x: tf.Tensor,
  inputs: FourBitKernelInputs,
  attributes: FourBitKernelAttributes,
  transposeWeight: boolean,
): tf.Tensor2D {
  ensureRegistered();
  return tf.engine().runKernel(MATMUL_4BIT_KERNEL, { x, ...inputs }, { ...attributes, transposeWeight }) as tf.Tensor2D;
}

/** int8 codes stored offset-binary, four to a word, as float32 [rows, columns], on webgpu or native. */
export function int8CodesKernel(packed: tf.Tensor, rows: number, columns: number, offset: number): tf.Tensor2D {
  ensureRegistered();
  return tf.engine().runKernel(INT8_CODES_KERNEL, { packed }, { rows, columns, offset }) as tf.Tensor2D;
}

/**
 * `map[code[b]] · scales[b >> blockShift]` for `blocks` codes stored four to a word (one fp32 multiply each, as the
 * host's double-quantization restore before its offset), on webgpu or native.
 */
export function nestedAbsmaxKernel(codes: tf.Tensor, map: tf.Tensor, scales: tf.Tensor, blocks: number, blockShift: number): tf.Tensor1D {
  ensureRegistered();
  return tf.engine().runKernel(NESTED_ABSMAX_KERNEL, { codes, map, scales }, { blocks, blockShift }) as tf.Tensor1D;
}

/**
 * `x·Wᵀ` (transposeWeight) or `x·W` for a 2-D x and int8 codes W [weightRows, weightColumns] (offset-binary bytes in
 * int32 words), on the native backend: with rowScales, W is bnb's dequantized `fp32(fp32(code·scale)·fp32(1/127))`;
 * without, the integer codes, summed exactly over 1024 columns at a time (as the 8-bit layer's host product).
 */
export function matMulInt8Kernel(x: tf.Tensor, packed: tf.Tensor, rowScales: tf.Tensor | null, layout: Int8Layout, transposeWeight: boolean): tf.Tensor2D {
  ensureRegistered();
  return tf.engine().runKernel(MATMUL_INT8_KERNEL, { x, packed, ...(rowScales ? { rowScales } : {}) }, { ...layout, transposeWeight }) as tf.Tensor2D;
}
