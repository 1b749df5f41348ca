import type * as tf from '@tensorflow/tfjs-core';
import type { NamedParameter } from '@peft-ts/core';

/** A batch as int32 tensors of shape [batchSize, sequenceLength]. */
export type TensorBatch = {
  readonly inputIds: tf.Tensor2D;
  readonly attentionMask: tf.Tensor2D;
  /** Label per position, −100 where the position is out of the loss. */
  readonly labels: tf.Tensor2D;
};

/** What the training loop needs from a model (a core `Module` with a loss method fits it). */
export interface TrainableModel {
  /** The parameters to optimise, by name (e.g. the LoRA weights). */
  trainableParameters(): readonly NamedParameter[];
  /** Mean loss over the batch's labelled positions, differentiable in the trainable parameters. */
  loss(batch: TensorBatch): tf.Scalar;
  /** Training mode (dropout on). */
  train(): void;
  /** Evaluation mode (dropout off). */
  eval(): void;
}
