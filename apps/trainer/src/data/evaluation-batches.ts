import { collateBatch, type Batch } from './collate-batch.js';
import type { TokenizedExample } from './tokenized-example.js';

/** The examples in order, `batchSize` at a time (the last batch may be smaller). */
export function* evaluationBatches(
  examples: readonly TokenizedExample[],
  batchSize: number,
  padTokenId: number,
): Generator<Batch> {
  for (let start = 0; start < examples.length; start += batchSize) {
    yield collateBatch(examples.slice(start, start + batchSize), padTokenId);
  }
}
