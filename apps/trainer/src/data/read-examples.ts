import { DataFormatError } from './data-format-error.js';
import { readJsonl } from './read-jsonl.js';
import { tokenizeRecord, type TokenizeOptions } from './tokenize-record.js';
import { IGNORE_INDEX, type TokenizedExample } from './tokenized-example.js';
import { parseTrainingRecord } from './training-record.js';

/** Reads and tokenizes every record of a JSONL file, in file order. */
export async function readExamples(path: string, options: TokenizeOptions): Promise<TokenizedExample[]> {
  const examples: TokenizedExample[] = [];
  for await (const { value, location } of readJsonl(path)) {
    const record = parseTrainingRecord(value, location);
    const example = tokenizeRecord(record, options, location);
    if (options.vocabSize !== undefined) checkVocabulary(example, record.format === 'input-ids', options.vocabSize, location);
    examples.push(example);
  }
  if (examples.length === 0) throw new DataFormatError(`${path}: no records (the file is empty or blank)`);
  return examples;
}

/**
 * Token ids must index the model's embedding: a pre-tokenized id past vocab_size is a data error, a tokenizer's id past
 * it means tokenizer and model do not belong together. Either would otherwise fail inside the first forward pass.
 */
function checkVocabulary(example: TokenizedExample, preTokenized: boolean, vocabSize: number, location: string): void {
  const outside = (id: number) => id >= vocabSize;
  const position = example.inputIds.findIndex(outside);
  if (position >= 0) {
    const id = example.inputIds[position];
    throw new DataFormatError(
      preTokenized
        ? `${location}: input_ids[${position}] is ${id}, not a token id of the model (vocab_size ${vocabSize}: ids 0 to ${vocabSize - 1})`
        : `${location}: the tokenizer produced token id ${id} (token ${position}), past the model's vocab_size ${vocabSize}; the tokenizer does not belong to this model`,
    );
  }
  const label = example.labels.findIndex((id) => id !== IGNORE_INDEX && outside(id));
  if (label >= 0) {
    throw new DataFormatError(
      `${location}: labels[${label}] is ${example.labels[label]}, not a token id of the model (vocab_size ${vocabSize}) nor ${IGNORE_INDEX}`,
    );
  }
}
