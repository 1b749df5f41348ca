import { DataFormatError } from './data-format-error.js';
import type { TokenizedExample } from './tokenized-example.js';

/**
 * Concatenates examples, each ending in EOS, into blocks of exactly `length` tokens (TRL's ConstantLengthDataset).
 * Each position keeps its example's label, so a prompt stays out of the loss when packed. The last, shorter block
 * is dropped for training (no padding) and kept for evaluation (`keepRemainder`), where every token counts.
 */
export function packExamples(
  examples: readonly TokenizedExample[],
  length: number,
  eosTokenId: number,
  options: { keepRemainder?: boolean; source?: string } = {},
): TokenizedExample[] {
  const inputIds: number[] = [];
  const labels: number[] = [];
  const attentionMask: number[] = [];
  for (const example of examples) {
    inputIds.push(...example.inputIds);
    labels.push(...example.labels);
    attentionMask.push(...example.attentionMask);
    if (example.inputIds[example.inputIds.length - 1] !== eosTokenId) {
      inputIds.push(eosTokenId);
      labels.push(eosTokenId);
      attentionMask.push(1);
    }
  }
  const blocks: TokenizedExample[] = [];
  const end = options.keepRemainder ? inputIds.length : inputIds.length - (inputIds.length % length);
  for (let start = 0; start < end; start += length) {
    blocks.push({
      inputIds: inputIds.slice(start, start + length),
      labels: labels.slice(start, start + length),
      attentionMask: attentionMask.slice(start, start + length),
    });
  }
  if (blocks.length === 0) {
    throw new DataFormatError(
      `${options.source ?? 'data'}: packing needs at least max_seq_length (${length}) tokens, the data has ${inputIds.length}; lower max_seq_length or turn packing off`,
    );
  }
  return blocks;
}
