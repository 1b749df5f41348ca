import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One sentence of the tagged Brown Corpus: words with their part-of-speech tags. */
export type TaggedSentence = { readonly file: string; readonly words: readonly string[]; readonly tags: readonly string[] };

/** Parses a Brown Corpus form-C file: one sentence per non-blank line, tokens `word/tag`. */
export function parseBrownFile(text: string, file: string): TaggedSentence[] {
  const sentences: TaggedSentence[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter(Boolean);
    if (tokens.length === 0) continue;
    const words: string[] = [];
    const tags: string[] = [];
    for (const token of tokens) {
      // The word itself may contain '/', the tag never does.
      const cut = token.lastIndexOf('/');
      words.push(cut > 0 ? token.slice(0, cut) : token);
      tags.push(cut > 0 ? token.slice(cut + 1) : '');
    }
    sentences.push({ file, words, tags });
  }
  return sentences;
}

const noSpaceBefore = new Set([',', '.', ';', ':', '?', '!', ')', "''", "'s", "n't"]);
const noSpaceAfter = new Set(['(', '``']);

/** Plain English from corpus tokens: Brown's `` '' quotes become ", punctuation attaches to words. */
export function detokenize(words: readonly string[]): string {
  let text = '';
  let glueNext = true;
  for (const word of words) {
    const glue = glueNext || noSpaceBefore.has(word);
    text += (glue ? '' : ' ') + (word === '``' || word === "''" ? '"' : word);
    glueNext = noSpaceAfter.has(word);
  }
  return text;
}

/** A sentence in the tagged form the demo teaches: `The/at jury/nn said/vbd ./.` (tags lower case). */
export function taggedText(sentence: TaggedSentence): string {
  return sentence.words.map((word, index) => `${word}/${sentence.tags[index].toLowerCase()}`).join(' ');
}

/** Every sentence of the corpus directory, files in name order (`ca01` … `cr09`). */
export async function readBrownCorpus(directory: string): Promise<TaggedSentence[]> {
  const files = (await readdir(directory)).filter((name) => /^c[a-r]\d\d$/.test(name)).sort();
  const sentences: TaggedSentence[] = [];
  for (const file of files) sentences.push(...parseBrownFile(await readFile(join(directory, file), 'utf8'), file));
  return sentences;
}
