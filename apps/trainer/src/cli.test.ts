import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { readTensorFile, writeTensorFile } from '@peft-ts/core';
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
      const result = await run(...args, '--input', fixturePath('mistral', 'inputs.safetensors'), '--out', out);
      expect(result.code).toBe(0);
      const expected = await readTensorFile(fixturePath('mistral', name, 'outputs.safetensors'));
      const logits = (await readTensorFile(out)).get('logits')!;
      expect(maxAbsDifference(logits, expected.get('logits')!)).toBeLessThan(1e-4);
      const disabled = join(scratch, `${name}-disabled.safetensors`);
      await run(...args, '--disable-adapters', '--input', fixturePath('mistral', 'inputs.safetensors'), '--out', disabled);
      expect(maxAbsDifference((await readTensorFile(disabled)).get('logits')!, expected.get('logits_adapter_disabled')!)).toBeLessThan(1e-4);
      if (expected.has('merged_logits')) {
        const merged = join(scratch, `${name}-merged.safetensors`);
        await run(...args, '--merge', '--input', fixturePath('mistral', 'inputs.safetensors'), '--out', merged);
        expect(maxAbsDifference((await readTensorFile(merged)).get('logits')!, expected.get('merged_logits')!)).toBeLessThan(1e-4);
      }
    },
  );

  it('reads attention_mask with the inputs', async () => {
    const inputs = await readTensorFile(fixturePath('mistral', 'inputs.safetensors'));
    const file = join(scratch, 'padded-inputs.safetensors');
    await writeTensorFile(file, new Map([['input_ids', inputs.get('input_ids')!], ['attention_mask', inputs.get('attention_mask_padded')!]]));
    const out = join(scratch, 'padded.safetensors');
    expect((await run('logits', '--backend', 'cpu', '--model', fixturePath('mistral', 'base_model'), '--input', file, '--out', out)).code).toBe(0);
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
});
