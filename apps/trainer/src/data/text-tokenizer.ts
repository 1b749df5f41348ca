export type ChatMessage = { readonly role: string; readonly content: string };

/** Renders a conversation to the text the model is trained on (a chat template). */
export type ChatTemplate = (messages: readonly ChatMessage[]) => string;

/** What the data pipeline needs from a tokenizer; model-common's HfTokenizer fits it as is. */
export interface TextTokenizer {
  /** Token ids; `addSpecialTokens` (default true) adds BOS/EOS as the tokenizer is configured to. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  applyChatTemplate?(messages: readonly ChatMessage[]): string;
  readonly bosTokenId?: number | null;
  readonly eosTokenId?: number | null;
  readonly padTokenId?: number | null;
}
