import * as tf from '@tensorflow/tfjs-core';
import { evaluationBatches } from '../data/evaluation-batches.js';
import type { TokenizedExample } from '../data/tokenized-example.js';
import { batchTensors } from './batch-tensors.js';
import type { TrainableModel } from './trainable-model.js';

export type Evaluation = {
  /** Mean of the batch losses weighted by batch size, as transformers' Trainer averages eval_loss. */
  readonly loss: number;
  readonly perplexity: number;
  readonly runtimeSeconds: number;
  readonly examples: number;
  readonly batches: number;
};

/** Loss and perplexity over `examples` in eval mode, without recording gradients; the model is left in eval mode. */
export async function evaluateLoss(
  model: TrainableModel,
  examples: readonly TokenizedExample[],
  batchSize: number,
  padTokenId: number,
): Promise<Evaluation> {
  const start = performance.now();
  model.eval();
  let weightedLoss = 0;
  let batches = 0;
  for (const batch of evaluationBatches(examples, batchSize, padTokenId)) {
    const loss = tf.tidy(() => model.loss(batchTensors(batch)));
    weightedLoss += (await loss.data())[0] * batch.batchSize;
    loss.dispose();
    batches += 1;
  }
  const loss = weightedLoss / examples.length;
  return { loss, perplexity: Math.exp(loss), runtimeSeconds: (performance.now() - start) / 1000, examples: examples.length, batches };
}
