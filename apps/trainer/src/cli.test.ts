import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { SafetensorsFile } from '@peft-ts/core/safetensors';
import { readTensorFile, writeTensorFile } from '@peft-ts/core';
import { writeSafetensors } from '@peft-ts/core/safetensors';
import { fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mistral7bV01Config } from '@peft-ts/model-mistral';
import { main } from './cli.js';

/** Runs the CLI in-process, capturing stdout and stderr. */
async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const error = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    error.mockRestore();
  }
}

const mistral7b = mistral7bV01Config;

describe('peft-ts CLI', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-cli-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('plan: the Mistral-7B figures, with a 64-layer LoRA config, and in 4-bit', async () => {
    const config = join(scratch, 'config.json');
    await writeFile(config, JSON.stringify(mistral7b));
    const base = JSON.parse((await run('plan', '--model', config, '--json')).stdout);
    expect(base).toMatchObject({ layers: 32, baseParams: 7_241_732_096, totalParams: 7_241_732_096 });
    // A bfloat16 checkpoint: linear and embedding weights stay 2 bytes a parameter, the norms float32.
    expect(base.memoryBytes.weights / base.baseParams).toBeGreaterThan(2);
    expect(base.memoryBytes.weights / base.baseParams).toBeLessThan(2.001);
    const adapterConfig = join(scratch, 'adapter_config.json');
    await writeFile(
      adapterConfig,
      JSON.stringify({
        r: 8,
        lora_alpha: 16,
        target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
        layer_replication: [[0, 16], [8, 24], [16, 32], [16, 32]],
        peft_type: 'LORA',
      }),
    );
    const replicated = JSON.parse((await run('plan', '--model', config, '--adapter-config', adapterConfig, '--json')).stdout);
    expect(replicated).toMatchObject({ layers: 64, baseParams: 7_241_732_096, totalParams: 7_283_675_136, trainableParams: 41_943_040 });
    const quantized = JSON.parse((await run('plan', '--model', config, '--quant', '4bit', '--json')).stdout);
    expect(quantized.torchNumel).toBe(3_752_071_168);
    expect(quantized.memoryBytes.weights).toBeLessThan(0.3 * base.memoryBytes.weights);
    const text = (await run('plan', '--model', config)).stdout;
    expect(text).toContain('base params       7,241,732,096');
  });

  it.each(['lora', 'rslora', 'patterns', 'embedding', 'dora', 'layer_replication'])(
    'logits reproduces the fixture case %s',
    async (name) => {
      const out = join(scratch, `${name}.safetensors`);
      const args = ['logits', '--backend', 'cpu', '--model', fixturePath('mistral', 'base_model'), '--adapter', fixturePath('mistral', name, 'adapter')];
      const result = await run(...args, '--input', fixturePath('mistral', 'inputs.safetensors'), '--output-file', out);
      expect(result.code).toBe(0);
      const expected = await readTensorFile(fixturePath('mistral', name, 'outputs.safetensors'));
      const logits = (await readTensorFile(out)).get('logits')!;
      expect(maxAbsDifference(logits, expected.get('logits')!)).toBeLessThan(1e-4);
      const disabled = join(scratch, `${name}-disabled.safetensors`);
      await run(...args, '--disable-adapters', '--input', fixturePath('mistral', 'inputs.safetensors'), '--output-file', disabled);
      expect(maxAbsDifference((await readTensorFile(disabled)).get('logits')!, expected.get('logits_adapter_disabled')!)).toBeLessThan(1e-4);
      if (expected.has('merged_logits')) {
        const merged = join(scratch, `${name}-merged.safetensors`);
        await run(...args, '--merge', '--input', fixturePath('mistral', 'inputs.safetensors'), '--output-file', merged);
        expect(maxAbsDifference((await readTensorFile(merged)).get('logits')!, expected.get('merged_logits')!)).toBeLessThan(1e-4);
      }
    },
  );

  it('merge writes a checkpoint of the model family that computes the adapted logits', async () => {
    const merged = join(scratch, 'merged-lora');
    const result = await run('merge', '--backend', 'cpu', '--model', fixturePath('mistral', 'base_model'), '--adapter', fixturePath('mistral', 'lora', 'adapter'), '--output-dir', merged);
    expect(result.code).toBe(0);
    expect(JSON.parse(await readFile(join(merged, 'config.json'), 'utf8'))).toMatchObject({ model_type: 'mistral', architectures: ['MistralForCausalLM'] });
    const out = join(scratch, 'merged-lora.safetensors');
    expect((await run('logits', '--backend', 'cpu', '--model', merged, '--input', fixturePath('mistral', 'inputs.safetensors'), '--output-file', out)).code).toBe(0);
    const expected = (await readTensorFile(fixturePath('mistral', 'lora', 'outputs.safetensors'))).get('logits')!;
    expect(maxAbsDifference((await readTensorFile(out)).get('logits')!, expected)).toBeLessThan(1e-4);
  });

  it('reads attention_mask with the inputs', async () => {
    const inputs = await readTensorFile(fixturePath('mistral', 'inputs.safetensors'));
    const file = join(scratch, 'padded-inputs.safetensors');
    await writeTensorFile(file, new Map([['input_ids', inputs.get('input_ids')!], ['attention_mask', inputs.get('attention_mask_padded')!]]));
    const out = join(scratch, 'padded.safetensors');
    expect((await run('logits', '--backend', 'cpu', '--model', fixturePath('mistral', 'base_model'), '--input', file, '--output-file', out)).code).toBe(0);
    const expected = (await readTensorFile(fixturePath('mistral', 'base', 'outputs.safetensors'))).get('logits_padded')!;
    // Row 1's first five positions are padding; compare the real tokens.
    const real = (tensor: tf.Tensor) => tf.slice(tensor, [1, 5, 0], [1, 19, -1]);
    expect(maxAbsDifference(real((await readTensorFile(out)).get('logits')!), real(expected))).toBeLessThan(1e-4);
  });

  it('reports bad input in one line naming the file and what was expected', async () => {
    const typo = join(scratch, 'typo.yaml');
    await writeFile(typo, 'model: x\ndata: y.jsonl\noutput_dir: out\nlearning_rat: 0.1\n');
    const typoResult = await run('train', '--config', typo);
    expect(typoResult.code).toBe(1);
    expect(typoResult.stderr).toMatch(/typo\.yaml.*learning_rat.*learning_rate/);
    expect(typoResult.stderr.trim().split('\n')).toHaveLength(1);

    const missing = await run('generate', '--backend', 'cpu', '--model', fixturePath('mistral', 'base_model'), '--prompt', 'hello');
    expect(missing.stderr).toMatch(/error: .*tokenizer\.json: not found/);

    const data = join(scratch, 'bad.jsonl');
    await writeFile(data, '{"input_ids": [1, 2, 3]}\n{"input_ids": [1, 2\n');
    const bad = await run('eval', '--backend', 'cpu', '--model', fixturePath('mistral', 'base_model'), '--data', data);
    expect(bad.stderr).toMatch(/error: .*bad\.jsonl:2: invalid JSON/);
    expect(await readFile(data, 'utf8')).toContain('input_ids');
  });

  describe('input validation', () => {
    const demoModel = fileURLToPath(new URL('../demo/base-model/', import.meta.url));
    const fixtureModel = fixturePath('mistral', 'base_model');
    const lastLine = (text: string) => text.trim().split('\n').at(-1);

    /** A copy of a model directory with config.json fields replaced and, optionally, one weight overwritten. */
    async function modelCopy(name: string, from: string, config: Record<string, unknown>, nanTensor?: string): Promise<string> {
      const directory = join(scratch, name);
      await mkdir(directory, { recursive: true });
      for (const file of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) await copyFile(join(from, file), join(directory, file)).catch(() => undefined);
      const original = JSON.parse(await readFile(join(from, 'config.json'), 'utf8'));
      await writeFile(join(directory, 'config.json'), JSON.stringify({ ...original, ...config }));
      const weights = await SafetensorsFile.open(join(from, 'model.safetensors'));
      const tensors = new Map();
      for (const tensor of weights.tensorNames) tensors.set(tensor, await weights.readTensor(tensor));
      await weights.close();
      if (nanTensor) tensors.get(nanTensor).data.fill(Number.NaN, 0, 4);
      await writeSafetensors(join(directory, 'model.safetensors'), tensors);
      return directory;
    }

    it('numeric options name the flag and the kind of number expected', async () => {
      const cases: [string[], string][] = [
        [['train', '--max-steps', 'abc'], "error: option '--max-steps <steps>' argument 'abc' is invalid. expected -1 or an integer ≥ 1"],
        [['train', '--learning-rate', '-1'], "error: option '--learning-rate <rate>' argument '-1' is invalid. expected a positive number"],
        [['train', '--validation-split', '1'], "error: option '--validation-split <fraction>' argument '1' is invalid. expected a number in [0, 1)"],
        [['eval', '--model', 'm', '--data', 'd', '--per-device-eval-batch-size', '0'], "error: option '--per-device-eval-batch-size <size>' argument '0' is invalid. expected an integer ≥ 1"],
        [['eval', '--model', 'm', '--data', 'd', '--max-seq-length', '12x'], "error: option '--max-seq-length <length>' argument '12x' is invalid. expected an integer ≥ 1"],
        [['generate', '--model', 'm', '--max-new-tokens', '0x10'], "error: option '--max-new-tokens <count>' argument '0x10' is invalid. expected an integer ≥ 0"],
        [['generate', '--model', 'm', '--top-p', '1.5'], "error: option '--top-p <mass>' argument '1.5' is invalid. expected a number in (0, 1]"],
        [['generate', '--model', 'm', '--temperature', ''], "error: option '--temperature <value>' argument '' is invalid. expected a positive number"],
        [['plan', '--model', 'm', '--per-device-train-batch-size', '0'], "error: option '--per-device-train-batch-size <size>' argument '0' is invalid. expected an integer ≥ 1"],
        [['plan', '--model', 'm', '--quant', '3bit'], "error: option '--quant <bits>' argument '3bit' is invalid. Allowed choices are 4bit, 8bit."],
      ];
      for (const [argv, message] of cases) {
        const result = await run(...argv);
        expect([argv.join(' '), result.code, lastLine(result.stderr)]).toEqual([argv.join(' '), 1, message]);
      }
    });

    it('--version prints the version in the trainer package.json', async () => {
      const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
      const result = await run('--version');
      expect([result.code, result.stdout]).toEqual([0, `${version}\n`]);
    });

    it('the old spellings of renamed options still work, hidden from --help, each with a one-line deprecation warning', async () => {
      const config = join(scratch, 'aliases-config.json');
      await writeFile(config, JSON.stringify(mistral7b));
      const planned = await run('plan', '--model', config, '--seq-length', '128', '--batch-size', '2', '--json');
      expect(planned.stderr).toBe('warning: --seq-length is deprecated; use --max-seq-length\nwarning: --batch-size is deprecated; use --per-device-train-batch-size\n');
      expect(JSON.parse(planned.stdout)).toMatchObject({ sequenceLength: 128, batchSize: 2 });
      const tooLong = await run('plan', '--model', config, '--seq-length', '40000');
      expect(lastLine(tooLong.stderr)).toBe(`error: --max-seq-length 40000: past max_position_embeddings 32768 (${config})`);
      // The alias parses its value as the option it stands for.
      const badBatch = await run('eval', '--model', 'm', '--data', 'd', '--batch-size', '0');
      expect(lastLine(badBatch.stderr)).toBe("error: option '--batch-size <size>' argument '0' is invalid. expected an integer ≥ 1");
      // A required option given under its old name counts as given.
      const merged = await run('merge', '--model', fixtureModel, '--out', join(scratch, 'never-merged'));
      expect(merged.stderr).toBe('warning: --out is deprecated; use --output-dir\nerror: merge needs an --adapter directory\n');
      const logits = await run('logits', '--backend', 'cpu', '--model', join(scratch, 'nowhere'), '--input', 'i', '--out', 'o');
      expect(logits.stderr).toBe(`warning: --out is deprecated; use --output-file\nerror: --model ${join(scratch, 'nowhere')}: does not exist\n`);
      for (const [command, old, current] of [['merge', '--out', '--output-dir'], ['logits', '--out', '--output-file'], ['eval', '--batch-size', '--per-device-eval-batch-size'], ['plan', '--seq-length', '--max-seq-length']]) {
        const help = (await run(command, '--help')).stdout;
        expect([command, help.includes(`${current} <`), help.includes(`${old} `)]).toEqual([command, true, false]);
      }
    });

    it('a bad value given on the command line is blamed on the option, not on the config file', async () => {
      const config = join(scratch, 'split.yaml');
      await writeFile(config, `model: ${demoModel}\ndata: { train: a.jsonl, validation: b.jsonl }\noutput_dir: out\n`);
      const result = await run('train', '--config', config, '--validation-split', '0.2');
      expect(result.stderr).toBe('error: --validation-split: cannot be used together with `data.validation`; use one or the other\n');
      await writeFile(config, `model: ${demoModel}\ndata: a.jsonl\noutput_dir: out\nmax_steps: 0\n`);
      expect((await run('train', '--config', config, '--seed', '3')).stderr).toBe(`error: ${config}: max_steps: expected -1 or a positive integer, got 0\n`);
    });

    it('plan: positions past max_position_embeddings, adapter directories and missing paths', async () => {
      const config = join(scratch, 'config.json');
      await writeFile(config, JSON.stringify(mistral7b));
      const tooLong = await run('plan', '--model', config, '--max-seq-length', '40000');
      expect(tooLong.stderr).toBe(`error: --max-seq-length 40000: past max_position_embeddings 32768 (${config})\n`);
      const adapter = join(scratch, 'plan-adapter');
      await mkdir(adapter, { recursive: true });
      const noConfig = await run('plan', '--model', config, '--adapter-config', adapter);
      expect(noConfig.stderr).toBe(`error: --adapter-config ${adapter}: the directory holds no adapter_config.json\n`);
      await writeFile(join(adapter, 'adapter_config.json'), JSON.stringify({ r: 8, target_modules: ['q_proj'], peft_type: 'LORA' }));
      const planned = await run('plan', '--model', config, '--adapter-config', adapter, '--json');
      expect(JSON.parse(planned.stdout).trainableParams).toBe(32 * 8 * (4096 + 4096));
      const missing = join(scratch, 'no-such-model');
      expect((await run('plan', '--model', missing)).stderr).toBe(`error: --model ${missing}: does not exist\n`);
      const empty = join(scratch, 'empty-model');
      await mkdir(empty, { recursive: true });
      expect((await run('plan', '--model', empty)).stderr).toBe(`error: --model ${empty}: the directory holds no config.json\n`);
    });

    it('plan: a preset name instead of a config, and a model_type no family handles', async () => {
      const config = join(scratch, 'config.json');
      await writeFile(config, JSON.stringify(mistral7b));
      const fromFile = JSON.parse((await run('plan', '--model', config, '--json')).stdout);
      expect(JSON.parse((await run('plan', '--model', 'mistral-7b-v0.1', '--json')).stdout)).toEqual(fromFile);
      const other = join(scratch, 'other-config.json');
      await writeFile(other, JSON.stringify({ ...mistral7b, model_type: 'gpt2' }));
      expect((await run('plan', '--model', other)).stderr).toBe(`error: ${other}: model_type "gpt2" is not supported (supported: 'mistral')\n`);
      const untyped = join(scratch, 'untyped-config.json');
      const { model_type: _, ...withoutType } = mistral7b;
      await writeFile(untyped, JSON.stringify(withoutType));
      expect((await run('plan', '--model', untyped)).stderr).toBe(`error: ${untyped}: has no model_type (supported: 'mistral')\n`);
    });

    it('a missing --model, --adapter or --input is named with its option', async () => {
      const missing = join(scratch, 'nowhere');
      expect(lastLine((await run('eval', '--model', missing, '--data', 'd.jsonl')).stderr)).toBe(`error: --model ${missing}: does not exist`);
      expect(lastLine((await run('generate', '--model', fixtureModel, '--adapter', missing, '--prompt', 'x')).stderr)).toBe(`error: --adapter ${missing}: does not exist`);
      const logits = await run('logits', '--backend', 'cpu', '--model', fixtureModel, '--input', missing, '--output-file', join(scratch, 'l.safetensors'));
      expect(lastLine(logits.stderr)).toBe(`error: --input ${missing}: does not exist`);
    });

    it('generate: past max_position_embeddings is an error, or with --truncate-prompt a warning', async () => {
      const model = await modelCopy('short-context', demoModel, { max_position_embeddings: 24 });
      const prompt = 'The jury said it did find that the city executive committee , which had over-all charge of the election';
      const args = ['generate', '--backend', 'cpu', '--model', model, '--prompt', 'The jury', '--prompt', prompt, '--max-new-tokens', '8'];
      const refused = await run(...args);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        new RegExp(`error: --prompt 2 is (\\d+) tokens; with --max-new-tokens 8 that passes max_position_embeddings 24 \\(${join(model, 'config.json')}\\): shorten it, lower --max-new-tokens, or pass --truncate-prompt to drop its first \\d+ tokens\n$`),
      );
      const truncated = await run(...args, '--truncate-prompt');
      expect(truncated.code).toBe(0);
      expect(truncated.stderr).toMatch(/warning: --prompt 2 is \d+ tokens; .* --truncate-prompt drops its first \d+ tokens\n/);
      expect(truncated.stdout.trim().split('\n')).toHaveLength(2);
      expect((await run('generate', '--model', model, '--max-new-tokens', '24', '--prompt', 'x')).stderr).toMatch(
        /error: --max-new-tokens 24: leaves no room for a prompt within max_position_embeddings 24/,
      );
    });

    it('generate --chat: a message without string content is named by file and index', async () => {
      const chat = join(scratch, 'chat.json');
      await writeFile(chat, JSON.stringify([{ role: 'user', content: 'hello' }, { role: 'assistant' }]));
      const result = await run('generate', '--backend', 'cpu', '--model', demoModel, '--chat', chat);
      expect(lastLine(result.stderr)).toBe(`error: ${chat}: messages[1]: "content" must be a string, got nothing`);
      await writeFile(chat, '[{"role": "user", "content": "hi"},');
      expect(lastLine((await run('generate', '--backend', 'cpu', '--model', demoModel, '--chat', chat)).stderr)).toMatch(
        new RegExp(`^error: --chat ${chat}: invalid JSON \\(`),
      );
    });

    it('eval: token ids past vocab_size and NaN weights are reported before any step', async () => {
      const data = join(scratch, 'ids.jsonl');
      await writeFile(data, '{"input_ids": [1, 2, 3]}\n{"input_ids": [1, 2, 128]}\n');
      const outside = await run('eval', '--backend', 'cpu', '--model', fixtureModel, '--data', data);
      expect(lastLine(outside.stderr)).toBe(`error: ${data}:2: input_ids[2] is 128, not a token id of the model (vocab_size 128: ids 0 to 127)`);
      const poisoned = await modelCopy('nan-weights', fixtureModel, {}, 'model.layers.0.mlp.up_proj.weight');
      await writeFile(data, '{"input_ids": [1, 2, 3]}\n');
      const warned = await run('eval', '--backend', 'cpu', '--model', poisoned, '--data', data);
      const weights = join(poisoned, 'model.safetensors');
      expect(warned.stderr).toContain(`warning: ${weights}: tensor "model.layers.0.mlp.up_proj.weight": 4 of `);
      const strict = await run('eval', '--backend', 'cpu', '--model', poisoned, '--data', data, '--strict');
      expect(strict.code).toBe(1);
      expect(lastLine(strict.stderr)).toMatch(new RegExp(`^error: ${weights}: tensor "model.layers.0.mlp.up_proj.weight": 4 of \\d+ values are NaN or ±Inf$`));
    });
  });
});
