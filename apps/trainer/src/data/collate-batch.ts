import { IGNORE_INDEX, type TokenizedExample } from './tokenized-example.js';

/** A batch as row-major [batchSize, sequenceLength] int32 arrays; the training loop turns it into tensors. */
export type Batch = {
  readonly inputIds: Int32Array;
  readonly attentionMask: Int32Array;
  readonly labels: Int32Array;
  readonly batchSize: number;
  readonly sequenceLength: number;
};

/** Right-pads examples to the longest one: pad id, attention mask 0 and label IGNORE_INDEX on padding. */
export function collateBatch(examples: readonly TokenizedExample[], padTokenId: number): Batch {
  const batchSize = examples.length;
  const sequenceLength = Math.max(...examples.map((example) => example.inputIds.length));
  const inputIds = new Int32Array(batchSize * sequenceLength).fill(padTokenId);
  const attentionMask = new Int32Array(batchSize * sequenceLength);
  const labels = new Int32Array(batchSize * sequenceLength).fill(IGNORE_INDEX);
  examples.forEach((example, row) => {
    inputIds.set(example.inputIds, row * sequenceLength);
    attentionMask.set(example.attentionMask, row * sequenceLength);
    labels.set(example.labels, row * sequenceLength);
  });
  return { inputIds, attentionMask, labels, batchSize, sequenceLength };
}
