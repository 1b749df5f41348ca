import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { bpeTokenizerJson, trainByteLevelBpe } from './train-byte-level-bpe.js';

const corpus = [
  'The jury said the election was conducted well.',
  'The jury praised the city for the manner in which the election was conducted.',
  "It's the jury's view that the election, in all, was fair — naïve critics disagreed.",
  'Numbers like 1961 and 3,000 appear too.',
];

describe('trainByteLevelBpe', () => {
  const specialTokens = ['<unk>', '<s>', '</s>'];
  const trained = trainByteLevelBpe(Array.from({ length: 20 }, () => corpus).flat(), { vocabSize: 330, specialTokens });

  it('starts with special tokens and bytes, then learns frequent merges deterministically', () => {
    expect(trained.vocab.get('<unk>')).toBe(0);
    expect(trained.vocab.get('</s>')).toBe(2);
    expect(trained.vocab.size).toBe(330);
    // 'he' occurs in every "the" and "The", more often than any other pair.
    expect(trained.merges[0]).toEqual(['h', 'e']);
    expect(trainByteLevelBpe(Array.from({ length: 20 }, () => corpus).flat(), { vocabSize: 330, specialTokens }).merges).toEqual(trained.merges);
  });

  it('produces a tokenizer.json that Hugging Face tokenizers loads and round-trips', () => {
    const tokenizer = new Tokenizer(bpeTokenizerJson(trained, { bosToken: '<s>', specialTokens }) as never, {} as never);
    for (const text of [...corpus, 'Unseen wörds: zebra quixotic 42!']) {
      const { ids } = tokenizer.encode(text);
      expect(ids[0]).toBe(1);
      expect(tokenizer.decode(ids, { skip_special_tokens: true })).toBe(text);
    }
    expect(tokenizer.encode('the jury').ids.length).toBeLessThan(5);
  });
});
