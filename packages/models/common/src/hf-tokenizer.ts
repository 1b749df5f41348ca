import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { PeftError } from '@peft-ts/core';
import { brandClass } from '@peft-ts/core/internal';

/** A missing or unusable tokenizer file, or a chat template that failed to render. */
export class TokenizerError extends PeftError {
  static {
    brandClass(this, '@peft-ts/model-common:TokenizerError');
  }
}

export type ChatMessage = { readonly role: string; readonly content: string };

export type ChatTemplateOptions = {
  /** Append the prompt for the assistant's turn (templates that support it). */
  readonly addGenerationPrompt?: boolean;
  /** Further template variables (`tools`, `documents`, …). */
  readonly variables?: Readonly<Record<string, unknown>>;
};

/** The parsed contents of tokenizer.json and tokenizer_config.json. */
export type TokenizerFiles = {
  readonly tokenizer: Record<string, unknown>;
  readonly config: Record<string, unknown>;
  /** Named in errors. */
  readonly source: string;
};

/**
 * A Hugging Face fast tokenizer (tokenizer.json through @huggingface/tokenizers) with the tokenizer_config.json
 * behaviour transformers adds: special tokens, `add_bos_token` / `add_eos_token` (Llama/Mistral tokenizers rebuild
 * their post-processor from these, so when present they decide, not tokenizer.json), and the Jinja chat template.
 */
export class HfTokenizer {
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly unkToken: string | null;
  readonly padToken: string | null;
  private readonly tokenizer: Tokenizer;
  private readonly addBos: boolean | undefined;
  private readonly addEos: boolean | undefined;
  private readonly chatTemplate: Template | null;
  private readonly source: string;

  constructor(files: TokenizerFiles) {
    const { config, source } = files;
    this.source = source;
    try {
      this.tokenizer = new Tokenizer(files.tokenizer, config);
    } catch (error) {
      throw new TokenizerError(`${source}: not a usable tokenizer (${(error as Error).message})`);
    }
    this.bosToken = tokenContent(config.bos_token);
    this.eosToken = tokenContent(config.eos_token);
    this.unkToken = tokenContent(config.unk_token);
    this.padToken = tokenContent(config.pad_token);
    this.addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : undefined;
    this.addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : undefined;
    const template = chatTemplateText(config.chat_template);
    try {
      this.chatTemplate = template === null ? null : new Template(template);
    } catch (error) {
      throw new TokenizerError(`${source}: chat_template does not parse (${(error as Error).message})`);
    }
  }

  get bosTokenId(): number | null {
    return this.idOf(this.bosToken);
  }

  get eosTokenId(): number | null {
    return this.idOf(this.eosToken);
  }

  get padTokenId(): number | null {
    return this.idOf(this.padToken);
  }

  /** Vocabulary size including added tokens. */
  get vocabularySize(): number {
    return this.tokenizer.get_vocab(true).size;
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    if (this.addBos === undefined && this.addEos === undefined) {
      return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    }
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (!addSpecialTokens) return ids;
    const bos = this.addBos && this.bosTokenId !== null ? [this.bosTokenId] : [];
    const eos = this.addEos && this.eosTokenId !== null ? [this.eosTokenId] : [];
    return [...bos, ...ids, ...eos];
  }

  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The conversation rendered by the tokenizer's chat template (special tokens written out as text). */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) throw new TokenizerError(`${this.source}: tokenizer_config.json has no chat_template`);
    // Templates render a missing content as an empty string, so a malformed message would pass unnoticed.
    messages.forEach((message: Partial<Record<string, unknown>>, index) => {
      for (const field of ['role', 'content']) {
        if (typeof message?.[field] !== 'string') {
          throw new TokenizerError(`chat messages[${index}].${field}: expected a string, got ${JSON.stringify(message?.[field]) ?? 'nothing'}`);
        }
      }
    });
    try {
      return this.chatTemplate.render({
        ...options.variables,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? false,
        bos_token: this.bosToken ?? '',
        eos_token: this.eosToken ?? '',
        unk_token: this.unkToken ?? '',
        pad_token: this.padToken ?? '',
      });
    } catch (error) {
      throw new TokenizerError(`chat template (${this.source}): ${(error as Error).message}`);
    }
  }

  /** Token ids of the rendered conversation. The template writes BOS itself, so none is added again. */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  private idOf(token: string | null): number | null {
    return token === null ? null : (this.tokenizer.token_to_id(token) ?? null);
  }
}

/** Special tokens appear as plain strings or as serialized AddedToken objects (`{ content: '<s>', … }`). */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/** A single template, or transformers' list of named ones (the `default` entry is used). */
function chatTemplateText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.find((entry) => entry?.name === 'default') as { template?: unknown } | undefined;
    return typeof named?.template === 'string' ? named.template : null;
  }
  return null;
}
