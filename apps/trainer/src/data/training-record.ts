import { DataFormatError } from './data-format-error.js';
import { parseChatMessages } from './chat-messages.js';
import type { ChatMessage } from './text-tokenizer.js';
import { IGNORE_INDEX } from './tokenized-example.js';

/** One JSONL record in any of the four accepted formats. */
export type TrainingRecord =
  | { readonly format: 'text'; readonly text: string }
  | { readonly format: 'messages'; readonly messages: readonly ChatMessage[] }
  | { readonly format: 'prompt-completion'; readonly prompt: string; readonly completion: string }
  | {
      readonly format: 'input-ids';
      readonly inputIds: readonly number[];
      readonly labels?: readonly number[];
      readonly attentionMask?: readonly number[];
    };

const expectedFormats = 'expected one of "text", "messages", "prompt"+"completion", or "input_ids"';

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Recognises a record's format. Pre-tokenized ids take precedence, then conversations, prompt/completion pairs and
 * plain text, the order in which TRL's SFTTrainer looks at dataset columns. `location` (`file:line`) starts errors.
 */
export function parseTrainingRecord(value: unknown, location: string): TrainingRecord {
  const fail = (message: string): never => {
    throw new DataFormatError(`${location}: ${message}`);
  };
  if (!isObject(value)) return fail(expectedFormats);
  if ('input_ids' in value) {
    const inputIds = tokenIds(value.input_ids, (id) => id >= 0);
    if (!inputIds || inputIds.length === 0) return fail('"input_ids" must be a non-empty array of token ids (integers ≥ 0)');
    const sameLength = (name: string, list: unknown, valid: (id: number) => boolean, what: string) => {
      if (list === undefined) return undefined;
      const ids = tokenIds(list, valid);
      if (!ids) return fail(`"${name}" must be an array of ${what}`);
      if (ids.length !== inputIds.length) {
        return fail(`"${name}" has ${ids.length} entries, expected ${inputIds.length} like "input_ids"`);
      }
      return ids;
    };
    return {
      format: 'input-ids',
      inputIds,
      labels: sameLength('labels', value.labels, (id) => id >= 0 || id === IGNORE_INDEX, `token ids or ${IGNORE_INDEX}`),
      attentionMask: sameLength('attention_mask', value.attention_mask, (bit) => bit === 0 || bit === 1, '0 and 1'),
    };
  }
  if ('messages' in value) {
    return { format: 'messages', messages: parseChatMessages(value.messages, location) };
  }
  if ('prompt' in value || 'completion' in value) {
    if (typeof value.prompt !== 'string' || typeof value.completion !== 'string') {
      return fail('"prompt" and "completion" must both be present and be strings');
    }
    return { format: 'prompt-completion', prompt: value.prompt, completion: value.completion };
  }
  if ('text' in value) {
    if (typeof value.text !== 'string') return fail('"text" must be a string');
    return { format: 'text', text: value.text };
  }
  return fail(expectedFormats);
}

function tokenIds(value: unknown, valid: (id: number) => boolean): number[] | null {
  if (!Array.isArray(value)) return null;
  return value.every((id) => Number.isInteger(id) && valid(id as number)) ? (value as number[]) : null;
}
