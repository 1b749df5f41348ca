import { describe, expect, it } from 'vitest';
import { detokenize, parseBrownFile, taggedText } from './brown-corpus.js';

const sample = [
  '',
  "\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, and/cc 1/2/cd cup/nn ./.",
  '',
  "\tIt/pps wasn't/bedz* over/rp (/( yet/rb )/) !/.",
].join('\n');

describe('Brown corpus', () => {
  const sentences = parseBrownFile(sample, 'ca01');

  it('parses sentences, splitting each token at its last slash', () => {
    expect(sentences).toHaveLength(2);
    expect(sentences[0].words).toContain('1/2');
    expect(sentences[0].tags[sentences[0].words.indexOf('1/2')]).toBe('cd');
  });

  it('detokenizes to plain English', () => {
    expect(detokenize(sentences[0].words)).toBe('The Fulton jury said "no evidence", and 1/2 cup.');
    expect(detokenize(sentences[1].words)).toBe("It wasn't over (yet)!");
  });

  it('renders the tagged form', () => {
    expect(taggedText(sentences[1])).toBe("It/pps wasn't/bedz* over/rp (/( yet/rb )/) !/.");
  });
});
