import * as tf from '@tensorflow/tfjs-core';
import { PeftError, TensorDtypeError } from './errors.js';
import { checkFiniteValues, type FiniteCheck } from './finite-check.js';
import {
  SafetensorsFile,
  int64ToInt32Array,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsMetadata,
  type SafetensorsTensor,
} from './safetensors/index.js';
import { writeFileAtomically } from './safetensors/write-file-atomically.js';

/**
 * A safetensors tensor as a tfjs tensor: floats become float32, integers int32 (64-bit values
 * are range-checked), bytes and bools stay one byte per element in a bool tensor.
 */
export function toTfTensor(tensor: SafetensorsTensor, name = 'tensor', file?: string): tf.Tensor {
  const shape = [...tensor.shape];
  switch (tensor.dtype) {
    case 'F32':
    case 'F16':
    case 'BF16':
      return tf.tensor(tensor.data, shape, 'float32');
    case 'F64':
      return tf.tensor(Float32Array.from(tensor.data), shape, 'float32');
    case 'I64':
    case 'U64':
      return tf.tensor(int64ToInt32Array(tensor.data, name, file), shape, 'int32');
    case 'I32':
    case 'I16':
    case 'U16':
    case 'I8':
      return tf.tensor(Int32Array.from(tensor.data), shape, 'int32');
    case 'U8':
    case 'BOOL':
      return tf.tensor(tensor.data, shape, 'bool');
    default:
      throw new TensorDtypeError(`${file ? `${file}: ` : ''}tensor ${JSON.stringify(name)}: dtype ${tensor.dtype} cannot be converted to a tfjs tensor`);
  }
}

/** A tfjs tensor as safetensors data: float32 → F32, int32 → I32, bool (bytes) → U8. */
export async function fromTfTensor(tensor: tf.Tensor): Promise<SafetensorsTensor> {
  const shape = [...tensor.shape];
  switch (tensor.dtype) {
    case 'float32':
      return { dtype: 'F32', shape, data: Float32Array.from(await tensor.data<'float32'>()) };
    case 'int32':
      return { dtype: 'I32', shape, data: Int32Array.from(await tensor.data<'int32'>()) };
    case 'bool':
      return { dtype: 'U8', shape, data: Uint8Array.from(await tensor.data<'bool'>()) };
    default:
      throw new PeftError(`a ${tensor.dtype} tensor cannot be written to safetensors`);
  }
}

/** The dtypes model and adapter weights are stored in (all read as float32). */
export const FLOAT_WEIGHT_DTYPES: readonly SafetensorsDtype[] = ['F32', 'F16', 'BF16'];

export type ReadTensorFileOptions = {
  /** Dtypes the caller can use: any other is a TensorDtypeError naming the tensor, its dtype and these, before any data is read. */
  readonly dtypes?: readonly SafetensorsDtype[];
  /** Check float tensors for NaN/±Inf as they are read (a warning, or an error when strict). */
  readonly finiteCheck?: FiniteCheck;
};

/** Throws a TensorDtypeError for the first tensor whose dtype is not in `accepted`. */
export function checkTensorDtype(dtype: SafetensorsDtype, accepted: readonly SafetensorsDtype[], where: { file: string; tensor: string }): void {
  if (accepted.includes(dtype)) return;
  throw new TensorDtypeError(
    `${where.file}: tensor ${JSON.stringify(where.tensor)} has dtype ${dtype}; expected ${accepted.join(', ')}`,
  );
}

/** Reads every tensor of a safetensors file into tfjs tensors (the caller disposes them). */
export async function readTensorFile(path: string, options: ReadTensorFileOptions = {}): Promise<Map<string, tf.Tensor>> {
  const file = await SafetensorsFile.open(path);
  const result = new Map<string, tf.Tensor>();
  try {
    if (options.dtypes) for (const name of file.tensorNames) checkTensorDtype(file.info(name).dtype, options.dtypes, { file: path, tensor: name });
    for (const name of file.tensorNames) {
      const tensor = await file.readTensor(name);
      if (options.finiteCheck && (tensor.data instanceof Float32Array || tensor.data instanceof Float64Array)) {
        checkFiniteValues(tensor.data, { file: path, tensor: name }, options.finiteCheck);
      }
      result.set(name, toTfTensor(tensor, name, path));
    }
    return result;
  } catch (error) {
    for (const tensor of result.values()) tensor.dispose();
    throw error;
  } finally {
    await file.close();
  }
}

/** Writes tfjs tensors to a safetensors file atomically. */
export async function writeTensorFile(
  path: string,
  tensors: ReadonlyMap<string, tf.Tensor>,
  metadata?: SafetensorsMetadata,
): Promise<void> {
  const converted = new Map<string, SafetensorsTensor>();
  for (const [name, tensor] of tensors) converted.set(name, await fromTfTensor(tensor));
  await writeSafetensors(path, converted, metadata);
}

/** Writes a text file atomically (temporary sibling, then rename): a failure never leaves half a file. */
export async function writeTextFileAtomically(path: string, text: string): Promise<void> {
  await writeFileAtomically(path, (handle) => handle.writeFile(text, 'utf8'));
}
