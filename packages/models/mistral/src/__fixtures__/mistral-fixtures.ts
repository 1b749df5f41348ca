import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFile, int64ToInt32Array } from '@peft-ts/core/safetensors';
import { fixturePath } from '@peft-ts/core/test';

/** The tiny transformers-saved Mistral (vocab 128, hidden 64, 5 layers, window 16). */
export const baseModelDirectory = fixturePath('mistral', 'base_model');

/** Every tensor of a fixture safetensors file, as stored (F16/BF16 widened). */
export async function readFixture(...parts: string[]): Promise<Map<string, { shape: readonly number[]; data: ArrayLike<number | bigint> }>> {
  const file = await SafetensorsFile.open(fixturePath(...parts));
  try {
    const result = new Map<string, { shape: readonly number[]; data: ArrayLike<number | bigint> }>();
    for (const name of file.tensorNames) result.set(name, await file.readTensor(name));
    return result;
  } finally {
    await file.close();
  }
}

/** `input_ids` [2, 24] and `attention_mask_padded` (row 1 left-padded by 5) as int32 tensors. */
export async function fixtureInputs(): Promise<{ inputIds: tf.Tensor2D; paddedMask: tf.Tensor2D; paddedMaskValues: Int32Array }> {
  const inputs = await readFixture('mistral', 'inputs.safetensors');
  const ids = int64ToInt32Array(inputs.get('input_ids')!.data as BigInt64Array);
  const paddedMaskValues = int64ToInt32Array(inputs.get('attention_mask_padded')!.data as BigInt64Array);
  return {
    inputIds: tf.keep(tf.tensor2d(ids, [2, 24], 'int32')),
    paddedMask: tf.keep(tf.tensor2d(paddedMaskValues, [2, 24], 'int32')),
    paddedMaskValues,
  };
}

/** Float32 output tensor `name` of `mistral/<folder>/outputs.safetensors`. */
export async function fixtureOutput(folder: string, name: string): Promise<ArrayLike<number>> {
  const outputs = await readFixture('mistral', folder, 'outputs.safetensors');
  const tensor = outputs.get(name);
  if (!tensor) throw new Error(`mistral/${folder}/outputs.safetensors has no ${name}: ${[...outputs.keys()].join(', ')}`);
  return tensor.data as ArrayLike<number>;
}
