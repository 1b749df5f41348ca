import { DataFormatError } from './data-format-error.js';
import type { ChatTemplate, TextTokenizer } from './text-tokenizer.js';
import { IGNORE_INDEX, type TokenizedExample } from './tokenized-example.js';
import type { TrainingRecord } from './training-record.js';

export type TokenizeOptions = {
  readonly tokenizer: TextTokenizer;
  /** Renders `messages` records; the tokenizer's own template is used when this is absent. */
  readonly chatTemplate?: ChatTemplate;
  /** The model's vocab_size: token ids at or past it are rejected at load, naming the line, not at step 1. */
  readonly vocabSize?: number;
};

/**
 * Token ids and labels of one record, as TRL's SFTTrainer prepares them: plain text and prompt/completion pairs get
 * EOS appended when the tokenizer did not end them with it; a prompt's tokens are left out of the loss; a chat is
 * rendered by its template (which places BOS/EOS itself) and tokenized without special tokens; pre-tokenized ids are
 * taken as they are, padding positions (attention mask 0) out of the loss unless labels are given.
 */
export function tokenizeRecord(record: TrainingRecord, options: TokenizeOptions, location: string): TokenizedExample {
  const { tokenizer } = options;
  const withEos = (ids: number[]) => {
    const eosTokenId = tokenizer.eosTokenId;
    return eosTokenId == null || ids[ids.length - 1] === eosTokenId ? ids : [...ids, eosTokenId];
  };
  const allLabelled = (inputIds: number[]) => ({ inputIds, labels: inputIds, attentionMask: inputIds.map(() => 1) });
  switch (record.format) {
    case 'text':
      return allLabelled(withEos(tokenizer.encode(record.text)));
    case 'messages': {
      const render = options.chatTemplate ?? tokenizer.applyChatTemplate?.bind(tokenizer);
      if (!render) throw new DataFormatError(`${location}: "messages" needs a chat template, and the tokenizer has none`);
      return allLabelled(tokenizer.encode(render(record.messages), { addSpecialTokens: false }));
    }
    case 'prompt-completion': {
      // Tokenized together, as TRL does, so the boundary splits into the tokens the model will see at inference.
      const promptLength = tokenizer.encode(record.prompt).length;
      const inputIds = withEos(tokenizer.encode(record.prompt + record.completion));
      const labels = inputIds.map((id, position) => (position < promptLength ? IGNORE_INDEX : id));
      return { inputIds, labels, attentionMask: inputIds.map(() => 1) };
    }
    case 'input-ids': {
      const attentionMask = record.attentionMask ?? record.inputIds.map(() => 1);
      const labels = record.labels ?? record.inputIds.map((id, position) => (attentionMask[position] ? id : IGNORE_INDEX));
      return { inputIds: record.inputIds, labels, attentionMask };
    }
  }
}
