import { describe, expect, it } from 'vitest';
import { BatchStream } from './batch-stream.js';
import { collateBatch } from './collate-batch.js';
import { evaluationBatches } from './evaluation-batches.js';
import { IGNORE_INDEX, type TokenizedExample } from './tokenized-example.js';

const example = (...inputIds: number[]): TokenizedExample => ({ inputIds, labels: inputIds, attentionMask: inputIds.map(() => 1) });
const examples = Array.from({ length: 10 }, (_, index) => example(100 + index));
const firstTokens = (stream: BatchStream, batches: number) =>
  Array.from({ length: batches }, () => Array.from(stream.next().inputIds));

describe('collateBatch', () => {
  it('right-pads to the longest example with the pad id, mask 0 and label −100', () => {
    const batch = collateBatch([example(5, 6, 7), { inputIds: [8], labels: [IGNORE_INDEX], attentionMask: [1] }], 0);
    expect(batch).toEqual({
      inputIds: Int32Array.from([5, 6, 7, 8, 0, 0]),
      attentionMask: Int32Array.from([1, 1, 1, 1, 0, 0]),
      labels: Int32Array.from([5, 6, 7, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]),
      batchSize: 2,
      sequenceLength: 3,
    });
  });

  it('evaluation batches keep file order, the last one smaller', () => {
    const batches = [...evaluationBatches(examples.slice(0, 5), 2, 0)];
    expect(batches.map((batch) => Array.from(batch.inputIds))).toEqual([[100, 101], [102, 103], [104]]);
  });
});

describe('BatchStream', () => {
  it('serves every example once per epoch in a seeded order that changes each epoch', () => {
    const stream = new BatchStream(examples, { batchSize: 4, seed: 42, padTokenId: 0 });
    expect(stream.batchesPerEpoch).toBe(3);
    const epoch0 = firstTokens(stream, 3);
    expect(epoch0.map((batch) => batch.length)).toEqual([4, 4, 2]);
    expect(stream.cursor).toEqual({ epoch: 1, position: 0 });
    const epoch1 = firstTokens(stream, 3);
    expect(epoch0.flat().sort()).toEqual(examples.map((item) => item.inputIds[0]));
    expect(epoch1.flat().sort()).toEqual(examples.map((item) => item.inputIds[0]));
    expect(epoch1.flat()).not.toEqual(epoch0.flat());
    expect(epoch0.flat()).not.toEqual(examples.map((item) => item.inputIds[0]));
    const sameSeed = new BatchStream(examples, { batchSize: 4, seed: 42, padTokenId: 0 });
    expect(firstTokens(sameSeed, 6)).toEqual([...epoch0, ...epoch1]);
    const otherSeed = new BatchStream(examples, { batchSize: 4, seed: 43, padTokenId: 0 });
    expect(firstTokens(otherSeed, 3)).not.toEqual(epoch0);
  });

  it('a restored cursor replays exactly the batches an uninterrupted stream serves', () => {
    const straight = new BatchStream(examples, { batchSize: 3, seed: 1, padTokenId: 0 });
    const expected = firstTokens(straight, 9);
    const interrupted = new BatchStream(examples, { batchSize: 3, seed: 1, padTokenId: 0 });
    const before = firstTokens(interrupted, 5);
    expect(interrupted.epochProgress).toBeCloseTo(1 + 3 / 10);
    expect(interrupted.remainingBatchesInEpoch).toBe(3);
    const resumed = new BatchStream(examples, { batchSize: 3, seed: 1, padTokenId: 0 });
    resumed.seek(interrupted.cursor);
    expect([...before, ...firstTokens(resumed, 4)]).toEqual(expected);
    expect(() => resumed.seek({ epoch: 0, position: 10 })).toThrow(/does not fit 10 training examples/);
  });
});
