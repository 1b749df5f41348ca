import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../data/collate-batch.js';
import type { TensorBatch } from './trainable-model.js';

/** The batch's arrays as int32 tensors, owned by the caller. */
export function batchTensors(batch: Batch): TensorBatch {
  const shape: [number, number] = [batch.batchSize, batch.sequenceLength];
  return {
    inputIds: tf.tensor2d(batch.inputIds, shape, 'int32'),
    attentionMask: tf.tensor2d(batch.attentionMask, shape, 'int32'),
    labels: tf.tensor2d(batch.labels, shape, 'int32'),
  };
}
