import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile, writeTensorFile } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { maxAbsDifference } from '@peft-ts/core/test';
import { LlamaForCausalLM, saveLlama, tinyLlamaConfig } from '@peft-ts/model-llama';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from './cli.js';

const demoModel = fileURLToPath(new URL('../demo/base-model/', import.meta.url));
const demoData = fileURLToPath(new URL('../demo/data/train.jsonl', import.meta.url));

/** Runs the CLI in-process, capturing stdout and stderr. */
async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const error = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    return { code: await main(argv), stdout, stderr };
  } finally {
    out.mockRestore();
    error.mockRestore();
  }
}

// The same commands as for Mistral, on a tiny random Llama checkpoint (grouped-query attention, linear rope scaling,
// attention biases) with the demo model's tokenizer.
describe('peft-ts on a Llama checkpoint', () => {
  let scratch: string;
  let model: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-llama-'));
    model = join(scratch, 'tiny-llama');
    await initBackend('cpu');
    manualSeed(5);
    const { vocab_size: vocabulary } = JSON.parse(await readFile(join(demoModel, 'config.json'), 'utf8'));
    const llama = new LlamaForCausalLM({
      ...tinyLlamaConfig,
      vocab_size: vocabulary,
      attention_bias: true,
      rope_scaling: { type: 'linear', factor: 2 },
    });
    await saveLlama(llama, model);
    llama.dispose();
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(demoModel, file), join(model, file));
    const lines = (await readFile(demoData, 'utf8')).split('\n').slice(0, 8).join('\n');
    await writeFile(join(scratch, 'train.jsonl'), `${lines}\n`);
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('train (LoRA, 2 steps), generate, merge and logits', async () => {
    const output = join(scratch, 'run');
    const train = await run(
      'train', '--backend', 'cpu', '--model', model, '--data', join(scratch, 'train.jsonl'), '--output-dir', output,
      '--max-steps', '2', '--max-seq-length', '32', '--per-device-train-batch-size', '2', '--lora-r', '4', '--logging-steps', '1',
    );
    expect(train.stderr).not.toContain('error');
    expect(train.code).toBe(0);
    // No target_modules given: PEFT's defaults for Llama, q_proj and v_proj.
    const adapterKeys = [...(await readTensorFile(join(output, 'adapter_model.safetensors'))).keys()];
    expect(adapterKeys).toContain('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight');
    expect(adapterKeys).toContain('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight');

    const generated = await run('generate', '--backend', 'cpu', '--model', model, '--adapter', output, '--prompt', 'Once upon', '--max-new-tokens', '4');
    expect(generated.code).toBe(0);
    expect(generated.stdout.length).toBeGreaterThan(0);

    const merged = join(scratch, 'merged');
    expect((await run('merge', '--backend', 'cpu', '--model', model, '--adapter', output, '--output-dir', merged)).code).toBe(0);
    const mergedConfig = JSON.parse(await readFile(join(merged, 'config.json'), 'utf8'));
    expect(mergedConfig).toMatchObject({ model_type: 'llama', architectures: ['LlamaForCausalLM'], attention_bias: true, rope_scaling: { type: 'linear', factor: 2 } });

    const inputs = join(scratch, 'inputs.safetensors');
    const inputIds = tf.tensor2d([[1, 40, 41, 42, 43, 44]], [1, 6], 'int32');
    await writeTensorFile(inputs, new Map([['input_ids', inputIds]]));
    inputIds.dispose();
    const adapted = join(scratch, 'adapted.safetensors');
    const fromMerged = join(scratch, 'merged.safetensors');
    expect((await run('logits', '--backend', 'cpu', '--model', model, '--adapter', output, '--input', inputs, '--output-file', adapted)).code).toBe(0);
    expect((await run('logits', '--backend', 'cpu', '--model', merged, '--input', inputs, '--output-file', fromMerged)).code).toBe(0);
    const [adaptedLogits, mergedLogits] = [(await readTensorFile(adapted)).get('logits')!, (await readTensorFile(fromMerged)).get('logits')!];
    expect(adaptedLogits.shape).toEqual([1, 6, mergedConfig.vocab_size]);
    expect(maxAbsDifference(mergedLogits, adaptedLogits)).toBeLessThan(1e-4);
  });

  it('plan: the llama-2-7b preset and a tiny checkpoint', async () => {
    const preset = JSON.parse((await run('plan', '--model', 'llama-2-7b', '--json')).stdout);
    // Llama-2-7B: 6,738,415,616 parameters (32 layers of 4·4096² attention and 3·4096·11008 MLP, two 32000×4096 embeddings).
    expect(preset).toMatchObject({ layers: 32, baseParams: 6_738_415_616 });
    expect((await run('plan', '--model', model)).code).toBe(0);
  });

  it("names the field of a broken Llama config through the family's parser", async () => {
    const config = join(scratch, 'broken-config.json');
    await writeFile(config, JSON.stringify({ model_type: 'llama', rope_scaling: { type: 'yarn', factor: 2 } }));
    expect((await run('plan', '--model', config)).stderr).toBe(`error: ${config}: rope_scaling.type: expected 'linear' or 'dynamic', got "yarn"\n`);
  });
});
