import { byteCharacters, byteLevelWords } from './byte-level.js';

export type TrainBpeOptions = {
  /** Target vocabulary size, special tokens and the 256 byte symbols included. */
  readonly vocabSize: number;
  /** Special tokens, given the first ids in this order (e.g. `<unk>`, `<s>`, `</s>`). */
  readonly specialTokens: readonly string[];
  /** Pairs seen fewer times than this are never merged. */
  readonly minFrequency?: number;
};

export type TrainedBpe = { readonly vocab: Map<string, number>; readonly merges: [string, string][] };

/**
 * Learns a byte-level BPE vocabulary: start from the 256 byte symbols and repeatedly merge the
 * most frequent adjacent pair (ties broken by the pair's text, so training is deterministic),
 * updating pair counts only for the words that contain the merged pair.
 */
export function trainByteLevelBpe(texts: Iterable<string>, options: TrainBpeOptions): TrainedBpe {
  const wordCounts = new Map<string, number>();
  for (const text of texts) for (const word of byteLevelWords(text)) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);

  const vocab = new Map<string, number>();
  for (const token of [...options.specialTokens, ...byteCharacters]) if (!vocab.has(token)) vocab.set(token, vocab.size);
  const words = [...wordCounts.keys()].map((word) => Array.from(word));
  const counts = [...wordCounts.values()];

  const pairCounts = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const separator = '\u0000';
  const addPairs = (wordIndex: number, sign: 1 | -1) => {
    const symbols = words[wordIndex];
    for (let position = 0; position + 1 < symbols.length; position++) {
      const pair = symbols[position] + separator + symbols[position + 1];
      pairCounts.set(pair, (pairCounts.get(pair) ?? 0) + sign * counts[wordIndex]);
      if (sign > 0) {
        let owners = pairWords.get(pair);
        if (!owners) pairWords.set(pair, (owners = new Set()));
        owners.add(wordIndex);
      }
    }
  };
  words.forEach((_, index) => addPairs(index, 1));

  const merges: [string, string][] = [];
  const minFrequency = options.minFrequency ?? 2;
  while (vocab.size < options.vocabSize) {
    let best: string | undefined;
    let bestCount = minFrequency - 1;
    for (const [pair, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== undefined && count >= minFrequency && pair < best)) {
        best = pair;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split(separator);
    const merged = left + right;
    merges.push([left, right]);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const wordIndex of pairWords.get(best) ?? []) {
      const symbols = words[wordIndex];
      addPairs(wordIndex, -1);
      const next: string[] = [];
      for (let position = 0; position < symbols.length; position++) {
        if (position + 1 < symbols.length && symbols[position] === left && symbols[position + 1] === right) {
          next.push(merged);
          position++;
        } else {
          next.push(symbols[position]);
        }
      }
      words[wordIndex] = next;
      addPairs(wordIndex, 1);
    }
    pairCounts.delete(best);
    pairWords.delete(best);
  }
  return { vocab, merges };
}

/**
 * A Hugging Face `tokenizer.json` for the trained BPE: ByteLevel pre-tokenizer and decoder, and a
 * post-processor that prepends `bosToken` (as Mistral's tokenizer does).
 */
export function bpeTokenizerJson(trained: TrainedBpe, special: { bosToken: string; specialTokens: readonly string[] }): object {
  const bosId = trained.vocab.get(special.bosToken);
  if (bosId === undefined) throw new Error(`bos token ${special.bosToken} is not in the vocabulary`);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special.specialTokens.map((content) => ({
      id: trained.vocab.get(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: special.bosToken, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: special.bosToken, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [special.bosToken]: { id: special.bosToken, ids: [bosId], tokens: [special.bosToken] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(trained.vocab),
      merges: trained.merges.map(([left, right]) => `${left} ${right}`),
    },
  };
}
