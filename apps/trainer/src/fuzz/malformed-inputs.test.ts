import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError, createLoraConfig } from '@peft-ts/config';
import { PeftError, SeededRandom } from '@peft-ts/core';
import { SAFETENSORS_DTYPES, dtypeByteSize, type SafetensorsDtype } from '@peft-ts/core/safetensors';
import { describeWithBackends, malformedSafetensorsCorpus } from '@peft-ts/core/test';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, LoraModel, loadLoraModel, saveAdapter } from '@peft-ts/lora';
import { MistralConfigError, MistralForCausalLM, loadMistral, mistral7bV01Config, parseMistralConfig, saveMistral } from '@peft-ts/model-mistral';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { main } from '../cli.js';
import { prepareDatasets } from '../data/prepare-datasets.js';
import { CharacterTokenizer } from '../data/testing/character-tokenizer.js';

/**
 * Malformed inputs of every kind the trainer reads, generated from fixed seeds, each run through the public loader
 * or the CLI entry. Every one must end in success or in one of the project's typed errors whose message names the
 * file (and the field or line) or the option, within a bounded time.
 */

const CASE_TIMEOUT_MS = 5_000;

type Outcome<T = unknown> = { kind: 'ok'; value: T } | { kind: 'error'; error: unknown } | { kind: 'hang' };

/** A stalled promise ends as 'hang'; synchronous work cannot be interrupted, so a blow-up there fails the test's own timeout. */
async function bounded<T>(action: () => Promise<T>): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'hang' }), CASE_TIMEOUT_MS);
  });
  const run = action().then(
    (value): Outcome<T> => ({ kind: 'ok', value }),
    (error: unknown): Outcome<T> => ({ kind: 'error', error }),
  );
  try {
    return await Promise.race([run, hang]);
  } finally {
    clearTimeout(timer);
  }
}

const isTyped = (error: unknown) => error instanceof PeftError || error instanceof ConfigError;

/** Tallies outcomes per category and collects every violation. */
class Tally {
  readonly counts = new Map<string, { cases: number; accepted: number; rejected: number }>();
  readonly failures: string[] = [];

  /** `names`: what a message must contain, any one of them (a file, `file:line: `, an option pattern). */
  record(category: string, name: string, outcome: Outcome, names: readonly (string | RegExp)[]): void {
    const count = this.counts.get(category) ?? { cases: 0, accepted: 0, rejected: 0 };
    this.counts.set(category, count);
    count.cases += 1;
    if (outcome.kind === 'ok') {
      count.accepted += 1;
      return;
    }
    count.rejected += 1;
    if (outcome.kind === 'hang') {
      this.failures.push(`${category} ${name}: no answer within ${CASE_TIMEOUT_MS} ms`);
      return;
    }
    const { error } = outcome;
    const message = error instanceof Error ? error.message : String(error);
    if (!isTyped(error)) this.failures.push(`${category} ${name}: untyped ${(error as Error)?.name}: ${message}`);
    else if (!names.some((part) => (typeof part === 'string' ? message.includes(part) : part.test(message)))) {
      this.failures.push(`${category} ${name}: message names none of ${names.join(', ')}: ${message}`);
    } else {
      for (const problem of unplacedProblems(error)) this.failures.push(`${category} ${name}: names no field or line: ${problem}`);
    }
  }
}

/** Whole-document problems say what the document is, or where its syntax broke. */
const documentProblem = /line \d+|unknown keys?|expected a .*(object|config)|not valid JSON|expected a JSON object/;

/** The problems of a config error that name neither a field nor a line. */
function unplacedProblems(error: unknown): string[] {
  if (error instanceof ConfigError) {
    return error.issues.filter((issue) => issue.path === '' && !documentProblem.test(issue.message)).map((issue) => issue.message);
  }
  if (error instanceof MistralConfigError) {
    const problems = error.problems.length > 0 ? error.problems : [error.message];
    return problems.filter((problem) => !/^[a-z_]+[.\w]*: /.test(problem) && !documentProblem.test(problem));
  }
  return [];
}

/** Picks from a list with a seeded generator. */
const pick = <T,>(random: SeededRandom, list: readonly T[]): T => list[random.nextInt(list.length)];

/** Values that are wrong for most fields in some way: types, signs, ranges, emptiness, huge or fractional sizes. */
const junkValues: readonly unknown[] = [
  -1, 0, 1, 2, 0.5, -0.5, 1.5, 3, 65_536, 2 ** 31, 1e300, -1e300, '', 'x', '8', 'null', 'all-linear', 'q_proj', null, true, false,
  [], [1], [0, 1], [[0, 1]], [[3, 3]], [[2, 1]], [[-1, 2]], [[0, 1.5]], ['q_proj'], {}, { a: 1 }, { q_proj: 0 }, '__proto__',
];

/** A JSON text with one random corruption: cut short, a character replaced, or one inserted. */
function corruptText(random: SeededRandom, text: string): string {
  const at = random.nextInt(text.length);
  const character = pick(random, ['{', '}', '"', ',', ':', '[', ']', 'x', '\\', '\u0000', '\n', ' ']);
  switch (random.nextInt(3)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + character + text.slice(at + 1);
    default:
      return text.slice(0, at) + character + text.slice(at);
  }
}

/** A document with 1–3 fields set to junk, a field dropped, or an unknown key added. */
function mutateObject(random: SeededRandom, document: Record<string, unknown>, extraKeys: readonly string[] = []): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...document };
  const keys = [...Object.keys(document), ...extraKeys];
  for (let change = 1 + random.nextInt(3); change > 0; change--) {
    const key = pick(random, keys);
    const roll = random.nextInt(10);
    if (roll === 0) delete copy[key];
    else if (roll === 1) copy[`${key}_typo`] = copy[key] ?? 1;
    else copy[key] = pick(random, junkValues);
  }
  return copy;
}

/** Every field set to every junk value in turn, as JSON texts: the systematic half of a config's cases. */
function singleFieldVariants(document: object): string[] {
  return Object.keys(document).flatMap((key) => junkValues.map((value) => JSON.stringify({ ...document, [key]: value })));
}

describeWithBackends(
  'malformed inputs (fuzz)',
  () => {
    let scratch: string;
    const tally = new Tally();
    const modelConfig = { ...parseMistralConfig(JSON.stringify(mistral7bV01Config)), hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 64, max_position_embeddings: 64 };
    const tinyModel = () => new MistralForCausalLM(modelConfig);
    let modelDirectory: string;
    let adapterConfigText: string;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), 'peft-ts-fuzz-'));
      modelDirectory = join(scratch, 'model');
      await mkdir(modelDirectory);
      const model = tinyModel();
      await saveMistral(model, modelDirectory);
      const lora = new LoraModel(model, createLoraConfig({ r: 2, loraAlpha: 4, targetModules: ['q_proj', 'v_proj'] }));
      await saveAdapter(lora, join(scratch, 'adapter'));
      model.dispose();
      adapterConfigText = await readFile(join(scratch, 'adapter', ADAPTER_CONFIG_FILE), 'utf8');
    });
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
      const lines = [...tally.counts].map(([category, { cases, accepted, rejected }]) => `  ${category}: ${cases} cases (${rejected} rejected, ${accepted} accepted)`);
      const total = [...tally.counts.values()].reduce((sum, { cases }) => sum + cases, 0);
      console.log(`malformed-input fuzz: ${total} cases\n${lines.join('\n')}`);
    });

    /** An adapter directory holding `configText` and `weights` (the saved ones when absent). */
    async function adapterWith(name: string, configText: string, weights?: Uint8Array): Promise<string> {
      const directory = join(scratch, name);
      await mkdir(directory, { recursive: true });
      await writeFile(join(directory, ADAPTER_CONFIG_FILE), configText);
      if (weights) await writeFile(join(directory, ADAPTER_WEIGHTS_FILE), weights);
      else await copyFile(join(scratch, 'adapter', ADAPTER_WEIGHTS_FILE), join(directory, ADAPTER_WEIGHTS_FILE));
      return directory;
    }

    /** Loads an adapter onto a fresh tiny model (a failed load may leave adapter layers behind). */
    async function loadAdapterDirectory(directory: string): Promise<Outcome> {
      const model = tinyModel();
      try {
        return await bounded(() => loadLoraModel(model, directory, { strict: true }));
      } finally {
        model.dispose();
      }
    }

    it('safetensors headers, offsets and dtypes, as adapter and as model weights', async () => {
      const corpus = malformedSafetensorsCorpus();
      const modelCopy = join(scratch, 'model-fuzz');
      await mkdir(modelCopy, { recursive: true });
      await copyFile(join(modelDirectory, 'config.json'), join(modelCopy, 'config.json'));
      for (const [index, testCase] of corpus.entries()) {
        const adapter = await adapterWith(`st-${index % 8}`, adapterConfigText, testCase.bytes);
        const weights = join(adapter, ADAPTER_WEIGHTS_FILE);
        tally.record('safetensors (adapter)', testCase.name, await loadAdapterDirectory(adapter), [weights]);
        await writeFile(join(modelCopy, 'model.safetensors'), testCase.bytes);
        const outcome = await bounded(async () => (await loadMistral(modelCopy, { strict: true })).dispose());
        tally.record('safetensors (model)', testCase.name, outcome, [join(modelCopy, 'model.safetensors')]);
      }
    });

    it('adapter tensors of every dtype, shape and value', async () => {
      const random = new SeededRandom(7, 1);
      const key = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
      const other = 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight';
      const vKeys = ['base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight', 'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight'];
      const shapes: Record<string, number[]> = { [key]: [2, 16], [other]: [16, 2], [vKeys[0]]: [2, 16], [vKeys[1]]: [8, 2] };
      for (let index = 0; index < 120; index++) {
        const dtype: SafetensorsDtype = random.nextInt(3) === 0 ? 'F32' : pick(random, SAFETENSORS_DTYPES);
        const shape = random.nextInt(4) === 0 ? [2, 1 + random.nextInt(20)] : shapes[key];
        const size = shape.reduce((product, dimension) => product * dimension, 1);
        const bytes = new Uint8Array(size * dtypeByteSize(dtype));
        for (let byte = 0; byte < bytes.length; byte++) bytes[byte] = random.nextInt(256);
        const tensors = new Map<string, { dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }>([[key, { dtype, shape, data: bytes }]]);
        for (const name of [other, ...vKeys]) {
          if (random.nextInt(8) === 0) continue;
          tensors.set(name, { dtype: 'F32', shape: shapes[name], data: new Uint8Array(4 * shapes[name][0] * shapes[name][1]) });
        }
        const directory = await adapterWith(`dtype-${index % 8}`, adapterConfigText);
        const weights = join(directory, ADAPTER_WEIGHTS_FILE);
        await rm(weights);
        await writeSafetensorsBytes(weights, tensors);
        tally.record('adapter tensors', `#${index} ${dtype} [${shape}]`, await loadAdapterDirectory(directory), [weights]);
      }
    });

    it('adapter_config.json values and text', async () => {
      const random = new SeededRandom(7, 2);
      const document = JSON.parse(adapterConfigText) as Record<string, unknown>;
      const texts = [
        ...singleFieldVariants(document),
        ...Array.from({ length: 200 }, (_, index) => (index % 4 === 0 ? corruptText(random, adapterConfigText) : JSON.stringify(mutateObject(random, document)))),
      ];
      for (const [index, text] of texts.entries()) {
        const directory = await adapterWith(`config-${index % 8}`, text);
        // A config that parses may still not fit the weights: then the weights file is named.
        tally.record('adapter_config.json', `#${index} ${text.slice(0, 100)}`, await loadAdapterDirectory(directory), [directory]);
      }
    });

    it('config.json values and text', async () => {
      const random = new SeededRandom(7, 3);
      const directory = join(scratch, 'model-config-fuzz');
      await mkdir(directory, { recursive: true });
      await copyFile(join(modelDirectory, 'model.safetensors'), join(directory, 'model.safetensors'));
      const text = JSON.stringify(modelConfig);
      const texts = [
        ...singleFieldVariants(modelConfig),
        ...Array.from({ length: 150 }, (_, index) => (index % 4 === 0 ? corruptText(random, text) : JSON.stringify(mutateObject(random, modelConfig)))),
      ];
      for (const [index, corrupted] of texts.entries()) {
        await writeFile(join(directory, 'config.json'), corrupted);
        const outcome = await bounded(async () => (await loadMistral(directory)).dispose());
        tally.record('config.json', `#${index} ${corrupted.slice(0, 80)}`, outcome, [directory]);
      }
    });

    /** Runs the CLI in-process; a failure is its one-line message (with the error's class when debugging). */
    async function cli(argv: string[]): Promise<{ code: number; stderr: string }> {
      let stderr = '';
      const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      const error = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
      try {
        return { code: await main(argv), stderr };
      } finally {
        out.mockRestore();
        error.mockRestore();
      }
    }

    /**
     * A CLI failure must be one `error:` line naming `mentions`; with PEFT_TS_DEBUG the stack that follows shows the
     * error's class, which must not be a plain JavaScript error (a bug, not a diagnosis).
     */
    async function recordCli(category: string, name: string, argv: string[], names: readonly (string | RegExp)[]): Promise<void> {
      const result = await bounded(() => cli(argv));
      if (result.kind !== 'ok') return tally.record(category, name, result, names);
      const { code, stderr } = result.value;
      if (code === 0) return tally.record(category, name, result, names);
      const [line, stack = ''] = stderr.split('\n').filter((text) => !text.startsWith('backend:') && !text.startsWith('warning:'));
      const errorName = stack.split(':')[0];
      const failure = ['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError'].includes(errorName)
        ? new Error(`${errorName}: ${line}`)
        : new PeftError(line ?? '');
      if (!line?.startsWith('error: ')) tally.failures.push(`${category} ${name}: not an error line: ${stderr}`);
      tally.record(category, name, { kind: 'error', error: failure }, names);
    }

    it('YAML training configs', async () => {
      vi.stubEnv('PEFT_TS_DEBUG', '1');
      const random = new SeededRandom(7, 4);
      const document: Record<string, unknown> = {
        model: 'no-such-model',
        data: 'train.jsonl',
        output_dir: 'out',
        backend: 'cpu',
        max_seq_length: 32,
        learning_rate: 0.001,
        max_steps: 2,
        per_device_train_batch_size: 2,
        lora: { r: 2, lora_alpha: 4, target_modules: ['q_proj'] },
      };
      const yaml = (value: Record<string, unknown>) => Object.entries(value).map(([key, entry]) => `${key}: ${JSON.stringify(entry)}`).join('\n');
      const file = join(scratch, 'run.yaml');
      try {
        for (let index = 0; index < 150; index++) {
          const mutated = mutateObject(random, document, ['warmup_steps', 'validation_split', 'quantization', 'strict']);
          if (mutated.backend !== 'cpu') mutated.backend = pick(random, ['cpu', 'gpu', 3, null]);
          const text = index % 4 === 0 ? corruptText(random, yaml(document)) : yaml(mutated);
          await writeFile(file, text);
          // The config file, or the model directory it names (which does not exist).
          await recordCli('training YAML', `#${index} ${text.replaceAll('\n', ' | ').slice(0, 120)}`, ['train', '--config', file], [file, scratch]);
        }
      } finally {
        vi.unstubAllEnvs();
      }
    });

    it('JSONL lines', async () => {
      const random = new SeededRandom(7, 5);
      const tokenizer = new CharacterTokenizer();
      const lineKinds: (() => string | Uint8Array)[] = [
        () => JSON.stringify({ text: pick(random, junkValues) }),
        () => JSON.stringify({ messages: [{ role: 'user', content: 'a' }, pick(random, [{ role: 'assistant' }, { content: 'b' }, { role: 1, content: 'b' }, 'x', null, { role: 'user', content: pick(random, junkValues) }])] }),
        () => JSON.stringify({ messages: pick(random, junkValues) }),
        () => JSON.stringify({ prompt: pick(random, junkValues), completion: pick(random, ['b', 3, null]) }),
        () => JSON.stringify({ input_ids: [1, random.nextInt(200), pick(random, [2, 99, 100, -1, 1.5, '3', 2 ** 40])] }),
        () => JSON.stringify({ input_ids: [1, 2, 3], labels: pick(random, [[1, 2], [-100, 2, 300], [1, 2, 3], 'x']), attention_mask: pick(random, [undefined, [1, 1, 0], [1, 2, 1]]) }),
        () => corruptText(random, JSON.stringify({ text: 'hello world' })),
        () => Uint8Array.from([...Buffer.from('{"text": "caf'), pick(random, [0xe9, 0xff, 0xc0, 0x80, 0xed]), ...Buffer.from('"}')]),
        () => pick(random, ['[1, 2]', '42', '"text"', 'null', '{}', '{"body": "x"}']),
      ];
      const path = join(scratch, 'data.jsonl');
      for (let index = 0; index < 200; index++) {
        const badLine = 1 + random.nextInt(3);
        const lines: (string | Uint8Array)[] = [];
        for (let line = 1; line <= 3; line++) lines.push(line === badLine ? pick(random, lineKinds)() : JSON.stringify({ text: `line ${line}` }));
        await writeFile(path, Buffer.concat(lines.map((line) => Buffer.concat([Buffer.from(line), Buffer.from('\n')]))));
        const outcome = await bounded(() =>
          prepareDatasets({ data: path, maxSeqLength: 32, packing: false, validationSplit: 0, seed: 1, tokenizer, vocabSize: 100 }),
        );
        tally.record('JSONL', `#${index} line ${badLine}: ${String(lines[badLine - 1]).slice(0, 80)}`, outcome, [`${path}:${badLine}: `]);
      }
    });

    it('CLI arguments', async () => {
      vi.stubEnv('PEFT_TS_DEBUG', '1');
      const random = new SeededRandom(7, 6);
      const planConfig = join(scratch, '7b-config.json');
      await writeFile(planConfig, JSON.stringify(mistral7bV01Config));
      const missing = join(scratch, 'missing-dir');
      const numbers = ['abc', '-1', '0', '1', '0.5', '1e3', '', 'NaN', 'Infinity', '0x10', '2.5', ' 3 ', '99999999999'];
      const commands: Record<string, { base: string[]; options: string[] }> = {
        train: { base: ['--model', missing, '--data', missing, '--output-dir', join(scratch, 'never'), '--backend', 'cpu'], options: ['--learning-rate', '--max-steps', '--num-train-epochs', '--per-device-train-batch-size', '--gradient-accumulation-steps', '--warmup-steps', '--weight-decay', '--max-grad-norm', '--logging-steps', '--save-steps', '--seed', '--max-seq-length', '--validation-split', '--lr-scheduler-type'] },
        eval: { base: ['--model', missing, '--data', missing, '--backend', 'cpu'], options: ['--max-seq-length', '--per-device-eval-batch-size', '--batch-size', '--quant'] },
        generate: { base: ['--model', missing, '--prompt', 'hi', '--backend', 'cpu'], options: ['--max-new-tokens', '--temperature', '--top-k', '--top-p', '--repetition-penalty', '--seed', '--quant'] },
        plan: { base: ['--model', planConfig], options: ['--per-device-train-batch-size', '--max-seq-length', '--batch-size', '--seq-length', '--quant', '--adapter-config'] },
      };
      try {
        for (let index = 0; index < 150; index++) {
          const command = pick(random, Object.keys(commands));
          const { base, options } = commands[command];
          const argv = [command, ...base];
          const given: string[] = [];
          for (let count = 1 + random.nextInt(2); count > 0; count--) {
            const option = pick(random, [...options, '--no-such-option']);
            given.push(option);
            argv.push(option, option === '--adapter-config' ? pick(random, [missing, scratch]) : pick(random, [...numbers, '4bit', '3bit', 'cosine']));
          }
          if (random.nextInt(6) === 0) argv.pop(); // an option left without its value
          await recordCli('CLI arguments', `#${index} ${argv.slice(0, 1).concat(argv.slice(1 + base.length)).join(' ')}`, argv, [/--[a-z]/, scratch]);
        }
      } finally {
        vi.unstubAllEnvs();
      }
    });

    it('every case ends in success or a typed error naming the file, field, line or option', () => {
      const total = [...tally.counts.values()].reduce((sum, { cases }) => sum + cases, 0);
      expect(total).toBeGreaterThanOrEqual(1_000);
      expect(tally.failures).toEqual([]);
      expect(tf.memory().numTensors).toBeLessThan(10_000);
    });
  },
  ['cpu'],
);

/** Writes raw tensor bytes of any dtype (the writer validates data types, which these cases break on purpose). */
async function writeSafetensorsBytes(path: string, tensors: Map<string, { dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }>): Promise<void> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, { dtype, shape, data }] of tensors) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
  json.copy(padded);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  await writeFile(path, Buffer.concat([length, padded, ...[...tensors.values()].map(({ data }) => data)]));
}
