import { DataFormatError } from './data-format-error.js';
import type { ChatMessage } from './text-tokenizer.js';

const describe = (value: unknown) => (value === undefined ? 'nothing' : JSON.stringify(value));

/**
 * A conversation as a list of `{"role": string, "content": string}` messages; `location` (`file:line` in JSONL, the
 * file for a chat file) starts errors, which name the message by its index.
 */
export function parseChatMessages(value: unknown, location: string): ChatMessage[] {
  const fail = (message: string): never => {
    throw new DataFormatError(`${location}: ${message}`);
  };
  if (!Array.isArray(value) || value.length === 0) {
    return fail(`"messages" must be a non-empty array of {"role": string, "content": string} objects, got ${describe(value)}`);
  }
  return value.map((message: unknown, index) => {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      return fail(`messages[${index}]: expected a {"role": string, "content": string} object, got ${describe(message)}`);
    }
    const { role, content } = message as Record<string, unknown>;
    if (typeof role !== 'string') return fail(`messages[${index}]: "role" must be a string, got ${describe(role)}`);
    if (typeof content !== 'string') return fail(`messages[${index}]: "content" must be a string, got ${describe(content)}`);
    return { role, content };
  });
}
