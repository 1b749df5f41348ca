import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from './load-tokenizer.js';
import { TokenizerError } from './hf-tokenizer.js';

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** A tiny Llama/Mistral-style tokenizer.json: ▁ word marks, BPE with byte fallback, BOS-adding template. */
const tokenizerJson = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: {
    type: 'Sequence',
    normalizers: [
      { type: 'Prepend', prepend: '▁' },
      { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
    ],
  },
  pre_tokenizer: null,
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
  },
  decoder: {
    type: 'Sequence',
    decoders: [
      { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
      { type: 'ByteFallback' },
      { type: 'Fuse' },
      { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ],
  },
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: '<unk>',
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: true,
    byte_fallback: true,
    vocab: Object.fromEntries(
      ['<unk>', '<s>', '</s>', '<0x21>', '▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd', 'll', 'he', 'hell', 'hello', '▁hello', 'or', '▁w', '▁wor', 'ld', '▁world'].map(
        (token, id) => [token, id],
      ),
    ),
    merges: ['l l', 'h e', 'he ll', 'hell o', '▁ hello', 'o r', '▁ w', '▁w or', 'l d', '▁wor ld'],
  },
};

/** Mistral-7B-Instruct-v0.1's template. */
const chatTemplate =
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}" +
  "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

describe('loadTokenizer', () => {
  let directory: string;

  async function writeTokenizer(name: string, config: object | null): Promise<string> {
    const folder = join(directory, name);
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    if (config) await writeFile(join(folder, 'tokenizer_config.json'), JSON.stringify(config));
    return folder;
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'mistral-tokenizer-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('round-trips text, with BOS and byte fallback', async () => {
    const tokenizer = await loadTokenizer(
      await writeTokenizer('plain', {
        add_bos_token: true,
        add_eos_token: false,
        bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, normalized: false, rstrip: false, single_word: false },
        eos_token: '</s>',
        unk_token: '<unk>',
        pad_token: null,
        clean_up_tokenization_spaces: false,
      }),
    );
    expect([tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.padTokenId]).toEqual([1, 2, null]);
    expect(tokenizer.vocabularySize).toBe(22);
    const ids = tokenizer.encode('hello world!');
    expect(ids).toEqual([1, 16, 21, 3]);
    expect(tokenizer.encode('hello world!', { addSpecialTokens: false })).toEqual([16, 21, 3]);
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('hello world!');
    expect(tokenizer.decode(ids)).toBe('<s> hello world!');
  });

  it('follows add_bos_token / add_eos_token from tokenizer_config.json over the template', async () => {
    const tokenizer = await loadTokenizer(
      await writeTokenizer('eos', { add_bos_token: false, add_eos_token: true, bos_token: '<s>', eos_token: '</s>' }),
    );
    expect(tokenizer.encode('hello')).toEqual([16, 2]);
    // Without the flags (or the config) tokenizer.json's post-processor decides.
    const bare = await loadTokenizer(await writeTokenizer('bare', null));
    expect(bare.encode('hello')).toEqual([1, 16]);
  });

  it('renders the chat template and encodes it without a second BOS', async () => {
    const tokenizer = await loadTokenizer(
      await writeTokenizer('chat', { add_bos_token: true, bos_token: '<s>', eos_token: '</s>', chat_template: chatTemplate }),
    );
    const messages = [
      { role: 'user', content: 'hello' },
      { role: 'assistant', content: 'world' },
      { role: 'user', content: 'hello' },
    ];
    expect(tokenizer.applyChatTemplate(messages)).toBe('<s>[INST] hello [/INST]world</s> [INST] hello [/INST]');
    const ids = tokenizer.encodeChat(messages);
    expect(ids[0]).toBe(1);
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
    expect(ids).toContain(2);
    expect(() => tokenizer.applyChatTemplate([{ role: 'assistant', content: 'hi' }])).toThrow(
      /chat template .*Conversation roles must alternate/,
    );
    const untyped = [messages[0], { role: 'assistant' }] as unknown as typeof messages;
    expect(() => tokenizer.applyChatTemplate(untyped)).toThrow('chat messages[1].content: expected a string, got nothing');
    const plain = await loadTokenizer(await writeTokenizer('no-template', { bos_token: '<s>' }));
    expect(() => plain.applyChatTemplate(messages)).toThrow('tokenizer_config.json has no chat_template');
  });

  it('names a missing or broken tokenizer.json', async () => {
    const missing = join(directory, 'nothing-here');
    await expect(loadTokenizer(missing)).rejects.toThrow(TokenizerError);
    await expect(loadTokenizer(missing)).rejects.toThrow(`${join(missing, 'tokenizer.json')}: not found`);
    const broken = await writeTokenizer('broken', null);
    await writeFile(join(broken, 'tokenizer.json'), '{"model": ');
    await expect(loadTokenizer(broken)).rejects.toThrow(`${join(broken, 'tokenizer.json')}: not valid JSON`);
  });
});
