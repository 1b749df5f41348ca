import * as tf from '@tensorflow/tfjs-core';
import { PeftError } from '@peft-ts/core';

type Entry = { keys: tf.Tensor4D; values: tf.Tensor4D };

/**
 * Rotated keys and values per decoder-layer slot (`layerIndex`), each [batch, kvHeads, kept, headDim].
 *
 * With a sliding window W a query at position p sees keys p−W … p, so at most W earlier keys are ever needed: the
 * cache keeps the last W and records where they start (`keyStart`) so masks stay in absolute positions. The cache
 * owns its tensors; call `dispose()` when done.
 */
export class KeyValueCache {
  private readonly entries = new Map<number, Entry>();
  private processed = 0;
  private firstKey = 0;

  constructor(readonly slidingWindow: number | null) {}

  /** Tokens processed so far (the absolute position of the next token). */
  get pastLength(): number {
    return this.processed;
  }

  /** Absolute position of the oldest key still held. */
  get keyStart(): number {
    return this.firstKey;
  }

  /** Keys and values held for a slot, or null before the first forward. */
  get(layerIndex: number): Readonly<Entry> | null {
    return this.entries.get(layerIndex) ?? null;
  }

  /**
   * Returns held + new keys and values for attention, and stores them (trimmed to the window). The returned
   * tensors belong to the caller's scope; the stored ones are kept outside it.
   */
  append(layerIndex: number, keys: tf.Tensor4D, values: tf.Tensor4D): Entry {
    const held = this.entries.get(layerIndex);
    if (held && held.keys.shape[0] !== keys.shape[0]) {
      throw new PeftError(`KV cache: batch size changed from ${held.keys.shape[0]} to ${keys.shape[0]}`);
    }
    const all: Entry = held
      ? { keys: tf.concat([held.keys, keys], 2) as tf.Tensor4D, values: tf.concat([held.values, values], 2) as tf.Tensor4D }
      : { keys, values };
    const length = all.keys.shape[2];
    const keep = this.slidingWindow === null ? length : Math.min(length, this.slidingWindow);
    const stored: Entry =
      keep === length
        ? { keys: tf.clone(all.keys), values: tf.clone(all.values) }
        : {
            keys: tf.slice(all.keys, [0, 0, length - keep, 0], [-1, -1, keep, -1]),
            values: tf.slice(all.values, [0, 0, length - keep, 0], [-1, -1, keep, -1]),
          };
    held?.keys.dispose();
    held?.values.dispose();
    this.entries.set(layerIndex, { keys: tf.keep(stored.keys), values: tf.keep(stored.values) });
    return all;
  }

  /** Marks `length` more tokens processed; called once per forward, after every layer appended. */
  advance(length: number): void {
    this.processed += length;
    if (this.slidingWindow !== null) this.firstKey = Math.max(0, this.processed - this.slidingWindow);
  }

  dispose(): void {
    for (const { keys, values } of this.entries.values()) {
      keys.dispose();
      values.dispose();
    }
    this.entries.clear();
    this.processed = 0;
    this.firstKey = 0;
  }
}
