import type { NamedParameter } from '@peft-ts/core';
import type { DecoderForCausalLM } from '@peft-ts/model-common';
import type { TrainableModel } from '../training/trainable-model.js';

/** The training loop's view of a causal LM: its next-token loss over a batch and what trains. */
export function trainableCausalModel(model: DecoderForCausalLM, trainableParameters: () => readonly NamedParameter[]): TrainableModel {
  return {
    trainableParameters,
    loss: (batch) => model.forward({ inputIds: batch.inputIds, attentionMask: batch.attentionMask, labels: batch.labels }).loss!,
    train: () => model.train(),
    eval: () => model.eval(),
  };
}
