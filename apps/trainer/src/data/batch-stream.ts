import { collateBatch, type Batch } from './collate-batch.js';
import { DataFormatError } from './data-format-error.js';
import { SeededRandom } from '@peft-ts/core';
import type { TokenizedExample } from './tokenized-example.js';

/** Where a stream stands: the epoch and how many examples of it have been served. */
export type DataCursor = { readonly epoch: number; readonly position: number };

export type BatchStreamOptions = { readonly batchSize: number; readonly seed: number; readonly padTokenId: number };

/**
 * Training batches, epoch after epoch, each epoch in its own seeded order (the order depends only on the seed and
 * the epoch, never on what came before), so that restoring a cursor replays exactly the batches a run would have
 * seen. An epoch's last batch may be smaller, as with a PyTorch DataLoader without drop_last.
 */
export class BatchStream {
  private position = 0;
  private epoch = 0;
  private order: number[];

  constructor(
    private readonly examples: readonly TokenizedExample[],
    private readonly options: BatchStreamOptions,
  ) {
    if (examples.length === 0) throw new DataFormatError('training data: no examples to train on');
    this.order = this.epochOrder(0);
  }

  get examplesPerEpoch(): number {
    return this.examples.length;
  }

  get batchesPerEpoch(): number {
    return Math.ceil(this.examples.length / this.options.batchSize);
  }

  /** Batches left before the current epoch ends. */
  get remainingBatchesInEpoch(): number {
    return Math.ceil((this.examples.length - this.position) / this.options.batchSize);
  }

  get cursor(): DataCursor {
    return { epoch: this.epoch, position: this.position };
  }

  /** Progress in epochs, fractional (Hugging Face's `epoch` in logs). */
  get epochProgress(): number {
    return this.epoch + this.position / this.examples.length;
  }

  seek(cursor: DataCursor): void {
    const { epoch, position } = cursor;
    const validPosition = Number.isInteger(position) && position >= 0 && position < this.examples.length;
    if (!Number.isInteger(epoch) || epoch < 0 || !validPosition) {
      throw new DataFormatError(
        `data cursor {epoch: ${epoch}, position: ${position}} does not fit ${this.examples.length} training examples`,
      );
    }
    this.epoch = epoch;
    this.position = position;
    this.order = this.epochOrder(epoch);
  }

  next(): Batch {
    const indices = this.order.slice(this.position, this.position + this.options.batchSize);
    const batch = collateBatch(indices.map((index) => this.examples[index]), this.options.padTokenId);
    this.position += indices.length;
    if (this.position === this.examples.length) this.seek({ epoch: this.epoch + 1, position: 0 });
    return batch;
  }

  private epochOrder(epoch: number): number[] {
    return new SeededRandom(this.options.seed, epoch).permutation(this.examples.length);
  }
}
