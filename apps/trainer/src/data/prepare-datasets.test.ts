import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataFormatError } from './data-format-error.js';
import { prepareDatasets, type PrepareDatasetsOptions } from './prepare-datasets.js';
import { readExamples } from './read-examples.js';
import { CharacterTokenizer } from './testing/character-tokenizer.js';
import { IGNORE_INDEX } from './tokenized-example.js';

const tokenizer = new CharacterTokenizer();
const ids = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });
let directory = '';

async function jsonl(name: string, lines: string[]): Promise<string> {
  const path = join(directory, name);
  await writeFile(path, lines.join('\n'));
  return path;
}

const options = (data: PrepareDatasetsOptions['data'], extra: Partial<PrepareDatasetsOptions> = {}): PrepareDatasetsOptions => ({
  data,
  maxSeqLength: 64,
  packing: false,
  validationSplit: 0,
  seed: 42,
  tokenizer,
  vocabSize: 100,
  ...extra,
});

async function failure(action: () => Promise<unknown>): Promise<string> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(DataFormatError);
    return (error as Error).message;
  }
  throw new Error('expected a DataFormatError');
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'peft-ts-data-'));
});
afterAll(() => rm(directory, { recursive: true, force: true }));

describe('reading JSONL records', () => {
  it('tokenizes each format as SFT does: EOS after text and completions, prompt out of the loss', async () => {
    const path = await jsonl('formats.jsonl', [
      JSON.stringify({ text: 'hi' }),
      '',
      '   ',
      JSON.stringify({ prompt: 'Q', completion: 'A' }),
      JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }),
      JSON.stringify({ input_ids: [5, 6, 7], labels: [-100, 6, 7] }),
      JSON.stringify({ input_ids: [5, 6, 0], attention_mask: [1, 1, 0] }),
    ]);
    const examples = await readExamples(path, { tokenizer });
    expect(examples).toEqual([
      { inputIds: [1, ...ids('hi'), 2], labels: [1, ...ids('hi'), 2], attentionMask: [1, 1, 1, 1] },
      { inputIds: [1, ...ids('QA'), 2], labels: [IGNORE_INDEX, IGNORE_INDEX, ...ids('A'), 2], attentionMask: [1, 1, 1, 1] },
      // The template's text, no special tokens added, no EOS appended.
      { inputIds: ids('user:x;'), labels: ids('user:x;'), attentionMask: ids('user:x;').map(() => 1) },
      { inputIds: [5, 6, 7], labels: [-100, 6, 7], attentionMask: [1, 1, 1] },
      { inputIds: [5, 6, 0], labels: [5, 6, IGNORE_INDEX], attentionMask: [1, 1, 0] },
    ]);
  });

  it('uses a caller-supplied chat template over the tokenizer’s', async () => {
    const path = await jsonl('chat.jsonl', [JSON.stringify({ messages: [{ role: 'user', content: 'hey' }] })]);
    const [example] = await readExamples(path, { tokenizer, chatTemplate: (messages) => `<${messages[0].content}>` });
    expect(example.inputIds).toEqual(ids('<hey>'));
  });

  it.each([
    ['{"text": "ok"}\n\n{"text": "broken"', 3, /invalid JSON \(.+\)$/],
    ['{"text": "ok"}\n{"body": "x"}', 2, /expected one of "text", "messages", "prompt"\+"completion", or "input_ids"$/],
    ['[1, 2]', 1, /expected one of "text", "messages", "prompt"\+"completion", or "input_ids"$/],
    ['{"text": 3}', 1, /"text" must be a string$/],
    ['{"prompt": "only"}', 1, /"prompt" and "completion" must both be present/],
    ['{"messages": []}', 1, /"messages" must be a non-empty array of \{"role": string, "content": string\} objects, got \[\]$/],
    ['{"text": "ok"}\n{"messages": [{"role": "user", "content": "a"}, {"role": "assistant"}]}', 2, /messages\[1\]: "content" must be a string, got nothing$/],
    ['{"messages": [{"role": "user", "content": ["a"]}]}', 1, /messages\[0\]: "content" must be a string, got \["a"\]$/],
    ['{"messages": [{"content": "a"}]}', 1, /messages\[0\]: "role" must be a string, got nothing$/],
    ['{"messages": [{"role": "user", "content": "a"}, 7]}', 1, /messages\[1\]: expected a \{"role": string, "content": string\} object, got 7$/],
    ['{"input_ids": [1, 2.5]}', 1, /"input_ids" must be a non-empty array of token ids/],
    ['{"input_ids": [1, 2], "labels": [1]}', 1, /"labels" has 1 entries, expected 2 like "input_ids"$/],
    ['{"input_ids": [1, 2], "attention_mask": [1, 2]}', 1, /"attention_mask" must be an array of 0 and 1$/],
  ])('reports a malformed record with its file and line: %s', async (text, line, message) => {
    const path = await jsonl('bad.jsonl', text.split('\n'));
    const error = await failure(() => readExamples(path, { tokenizer }));
    expect(error.startsWith(`${path}:${line}: `)).toBe(true);
    expect(error).toMatch(message);
  });

  it('rejects invalid UTF-8 with the file, line and byte, and accepts a BOM and CRLF line ends', async () => {
    const path = join(directory, 'latin1.jsonl');
    await writeFile(path, Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    expect(await failure(() => readExamples(path, { tokenizer }))).toBe(
      `${path}:2: invalid UTF-8 (byte 0xe9 at byte 14 of the line); the file must be UTF-8`,
    );
    const cut = join(directory, 'cut.jsonl');
    await writeFile(cut, Buffer.concat([Buffer.from('{"text": "ok"}\r\n\r\n{"text": "'), Buffer.from([0xe2, 0x82])]));
    expect(await failure(() => readExamples(cut, { tokenizer }))).toBe(
      `${cut}:3: invalid UTF-8 (the line ends inside a multi-byte character); the file must be UTF-8`,
    );
    const windows = join(directory, 'windows.jsonl');
    await writeFile(windows, '\uFEFF{"text": "a"}\r\n{"text": "é"}\r\n');
    expect((await readExamples(windows, { tokenizer })).map((example) => example.inputIds)).toEqual([
      [tokenizer.bosTokenId, ...ids('a'), tokenizer.eosTokenId],
      [tokenizer.bosTokenId, ...ids('é'), tokenizer.eosTokenId],
    ]);
  });

  it('rejects token ids past the model\'s vocab_size before training, naming the line', async () => {
    const path = await jsonl('ids.jsonl', ['{"input_ids": [1, 2, 3]}', '{"input_ids": [1, 99, 100, 4]}']);
    expect(await failure(() => prepareDatasets(options(path)))).toBe(
      `${path}:2: input_ids[2] is 100, not a token id of the model (vocab_size 100: ids 0 to 99)`,
    );
    const labels = await jsonl('labels.jsonl', ['{"input_ids": [1, 2, 3], "labels": [-100, 2, 300]}']);
    expect(await failure(() => prepareDatasets(options(labels)))).toBe(
      `${labels}:1: labels[2] is 300, not a token id of the model (vocab_size 100) nor -100`,
    );
    const text = await jsonl('text.jsonl', ['{"text": "fits"}', '{"text": "aP"}']);
    expect(await failure(() => prepareDatasets(options(text, { vocabSize: 50 })))).toBe(
      `${text}:2: the tokenizer produced token id 90 (token 2), past the model's vocab_size 50; the tokenizer does not belong to this model`,
    );
  });

  it('reports a missing file, an empty file and a chat without a template', async () => {
    expect(await failure(() => readExamples(join(directory, 'missing.jsonl'), { tokenizer }))).toMatch(
      /missing\.jsonl: cannot be read \(ENOENT/,
    );
    const empty = await jsonl('empty.jsonl', ['', '']);
    expect(await failure(() => readExamples(empty, { tokenizer }))).toBe(`${empty}: no records (the file is empty or blank)`);
    const chat = await jsonl('chat-only.jsonl', [JSON.stringify({ messages: [{ role: 'user', content: 'x' }] })]);
    const plain = { encode: (text: string) => ids(text), eosTokenId: 2 };
    expect(await failure(() => readExamples(chat, { tokenizer: plain }))).toBe(
      `${chat}:1: "messages" needs a chat template, and the tokenizer has none`,
    );
  });
});

describe('prepareDatasets', () => {
  const texts = Array.from({ length: 20 }, (_, index) => JSON.stringify({ text: `example ${index}` }));

  it('holds out a seeded validation split: the same seed gives the same split, another seed another', async () => {
    const path = await jsonl('split.jsonl', texts);
    const first = await prepareDatasets(options(path, { validationSplit: 0.25 }));
    const again = await prepareDatasets(options(path, { validationSplit: 0.25 }));
    const other = await prepareDatasets(options(path, { validationSplit: 0.25, seed: 7 }));
    expect(first.statistics).toMatchObject({ trainingRecords: 15, validationRecords: 5 });
    expect(first.validation).toEqual(again.validation);
    expect(first.training).toEqual(again.training);
    expect(other.validation).not.toEqual(first.validation);
    // Nothing is lost or duplicated.
    const all = [...first.training, ...first.validation].map((example) => example.inputIds.join()).sort();
    expect(all).toEqual((await prepareDatasets(options(path))).training.map((example) => example.inputIds.join()).sort());
    // EOS is the pad id when the tokenizer has no pad token.
    expect(first.padTokenId).toBe(2);
  });

  it('reads a separate validation file', async () => {
    const train = await jsonl('train.jsonl', texts.slice(0, 4));
    const validation = await jsonl('validation.jsonl', texts.slice(4, 6));
    const prepared = await prepareDatasets(options({ train, validation }));
    expect(prepared.training).toHaveLength(4);
    expect(prepared.validation.map((example) => example.inputIds)).toEqual([
      [1, ...ids('example 4'), 2],
      [1, ...ids('example 5'), 2],
    ]);
  });

  it('truncates to max_seq_length and drops sequences left without labels', async () => {
    const path = await jsonl('long.jsonl', [
      JSON.stringify({ text: 'abcdefghij' }),
      JSON.stringify({ prompt: 'a long prompt', completion: 'x' }),
    ]);
    const prepared = await prepareDatasets(options(path, { maxSeqLength: 6 }));
    expect(prepared.training).toEqual([{ inputIds: [1, ...ids('abcde')], labels: [1, ...ids('abcde')], attentionMask: [1, 1, 1, 1, 1, 1] }]);
    expect(prepared.statistics).toMatchObject({ truncated: 2, withoutLabels: 1, trainingTokens: 6 });
  });

  it('packs examples with EOS separators into full blocks, keeping prompt labels masked', async () => {
    const path = await jsonl('pack.jsonl', [
      JSON.stringify({ text: 'ab' }),
      JSON.stringify({ prompt: 'c', completion: 'd' }),
      JSON.stringify({ input_ids: [50, 51] }),
    ]);
    // Streams: [1 a b 2] [1 c d 2] [50 51 2] → 11 tokens → two blocks of 5, the last token dropped.
    const prepared = await prepareDatasets(options(path, { packing: true, maxSeqLength: 5 }));
    const [a, b, c, d] = ids('abcd');
    expect(prepared.training).toEqual([
      { inputIds: [1, a, b, 2, 1], labels: [1, a, b, 2, IGNORE_INDEX], attentionMask: [1, 1, 1, 1, 1] },
      { inputIds: [c, d, 2, 50, 51], labels: [IGNORE_INDEX, d, 2, 50, 51], attentionMask: [1, 1, 1, 1, 1] },
    ]);
    expect(await failure(() => prepareDatasets(options(path, { packing: true, maxSeqLength: 64 })))).toBe(
      `${path}: packing needs at least max_seq_length (64) tokens, the data has 11; lower max_seq_length or turn packing off`,
    );
  });
});
