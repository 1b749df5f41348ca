import * as tf from '@tensorflow/tfjs-core';
import { PeftError } from './errors.js';
import {
  SafetensorsFile,
  int64ToInt32Array,
  writeSafetensors,
  type SafetensorsMetadata,
  type SafetensorsTensor,
} from './safetensors/index.js';
import { writeFileAtomically } from './safetensors/write-file-atomically.js';

/**
 * A safetensors tensor as a tfjs tensor: floats become float32, integers int32 (64-bit values
 * are range-checked), bytes and bools stay one byte per element in a bool tensor.
 */
export function toTfTensor(tensor: SafetensorsTensor, name = 'tensor'): tf.Tensor {
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
      return tf.tensor(int64ToInt32Array(tensor.data, name), shape, 'int32');
    case 'I32':
    case 'I16':
    case 'U16':
    case 'I8':
      return tf.tensor(Int32Array.from(tensor.data), shape, 'int32');
    case 'U8':
    case 'BOOL':
      return tf.tensor(tensor.data, shape, 'bool');
    default:
      throw new PeftError(`${name}: dtype ${tensor.dtype} cannot be converted to a tfjs tensor`);
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

/** Reads every tensor of a safetensors file into tfjs tensors (the caller disposes them). */
export async function readTensorFile(path: string): Promise<Map<string, tf.Tensor>> {
  const file = await SafetensorsFile.open(path);
  try {
    const result = new Map<string, tf.Tensor>();
    for (const name of file.tensorNames) result.set(name, toTfTensor(await file.readTensor(name), `${path}: ${name}`));
    return result;
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
