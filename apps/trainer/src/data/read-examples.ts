import { DataFormatError } from './data-format-error.js';
import { readJsonl } from './read-jsonl.js';
import { tokenizeRecord, type TokenizeOptions } from './tokenize-record.js';
import type { TokenizedExample } from './tokenized-example.js';
import { parseTrainingRecord } from './training-record.js';

/** Reads and tokenizes every record of a JSONL file, in file order. */
export async function readExamples(path: string, options: TokenizeOptions): Promise<TokenizedExample[]> {
  const examples: TokenizedExample[] = [];
  for await (const { value, location } of readJsonl(path)) {
    examples.push(tokenizeRecord(parseTrainingRecord(value, location), options, location));
  }
  if (examples.length === 0) throw new DataFormatError(`${path}: no records (the file is empty or blank)`);
  return examples;
}
