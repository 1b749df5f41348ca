import type { ChatMessage, TextTokenizer } from '../text-tokenizer.js';

/**
 * A test tokenizer: one token per character (id = 10 + code point mod 90), BOS 1 and EOS 2 like Llama/Mistral
 * tokenizers (BOS added by default, EOS not), no pad token.
 */
export class CharacterTokenizer implements TextTokenizer {
  readonly bosTokenId = 1;
  readonly eosTokenId = 2;
  readonly padTokenId = null;

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = [...text].map((character) => 10 + (character.codePointAt(0)! % 90));
    return options.addSpecialTokens ?? true ? [this.bosTokenId, ...ids] : ids;
  }

  /** `role:content;` per message: enough to see which template rendered a chat. */
  applyChatTemplate(messages: readonly ChatMessage[]): string {
    return messages.map((message) => `${message.role}:${message.content};`).join('');
  }
}
