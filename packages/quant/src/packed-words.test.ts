import * as tf from '@tensorflow/tfjs-core';
import { describeWithBackends, testBackends } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { bytesOfWords, packBytesIntoWords, unpackWordsTensor } from './packed-words.js';

// Every byte value, in each position of a word (top bytes ≥ 128 make the word negative), and a short last word.
const bytes = Uint8Array.from({ length: 1027 }, (_, index) => (index * 97 + (index >> 8)) % 256);

it('packs bytes four to a word, byte j in bits 8j..8j+7, and views them back', () => {
  const words = packBytesIntoWords(bytes);
  expect(words.length).toBe(257);
  expect(words[0] & 0xff).toBe(bytes[0]);
  expect((words[0] >>> 24) & 0xff).toBe(bytes[3]);
  expect(bytesOfWords(words, bytes.length)).toEqual(bytes);
});

// Exact integer division is what the tf-op unpacking needs; wasm's int32 floorDiv goes through float32.
describeWithBackends(
  'unpackWordsTensor',
  () => {
    it('gives the packed bytes', async () => {
      const words = tf.tensor1d(packBytesIntoWords(bytes), 'int32');
      const unpacked = unpackWordsTensor(words, bytes.length);
      expect(Uint8Array.from(await unpacked.data())).toEqual(bytes);
      tf.dispose([words, unpacked]);
    });
  },
  testBackends().filter((backend) => backend !== 'wasm'),
);
