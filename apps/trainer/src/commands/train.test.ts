import { spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTensorFile } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../cli.js';

const webgpuAvailable = await initBackend('webgpu').then(
  () => true,
  () => false,
);
const demo = fileURLToPath(new URL('../../demo/', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/peft-ts.mjs', import.meta.url));

async function losses(outputDirectory: string): Promise<[number, number][]> {
  const lines = (await readFile(join(outputDirectory, 'metrics.jsonl'), 'utf8')).trim().split('\n');
  return lines.map((line) => JSON.parse(line)).filter((record) => record.loss !== undefined).map((record) => [record.step, record.loss]);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

describe('peft-ts train', () => {
  let scratch: string;
  let common: string[];
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-train-'));
    const lines = (await readFile(join(demo, 'data', 'train.jsonl'), 'utf8')).split('\n').slice(0, 48).join('\n');
    await writeFile(join(scratch, 'train.jsonl'), `${lines}\n`);
    await writeFile(
      join(scratch, 'run.yaml'),
      [
        `model: ${join(demo, 'base-model')}`,
        'data: train.jsonl',
        'backend: wasm',
        'max_seq_length: 48',
        'per_device_train_batch_size: 4',
        'max_steps: 12',
        'logging_steps: 1',
        'save_steps: 2',
        'learning_rate: 0.01',
        'seed: 3',
        'lora: { r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj], use_dora: true }',
      ].join('\n'),
    );
    common = ['train', '--config', join(scratch, 'run.yaml')];
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('writes a PEFT adapter, trainer_state.json, metrics.jsonl and the report; the loss falls', async () => {
    const output = join(scratch, 'plain');
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main([...common, '--output-dir', output])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    for (const file of ['adapter_config.json', 'adapter_model.safetensors', 'trainer_state.json', 'metrics.jsonl', 'report.html', 'loss.svg']) {
      expect([file, await exists(join(output, file))]).toEqual([file, true]);
    }
    const configText = await readFile(join(output, 'adapter_config.json'), 'utf8');
    const config = JSON.parse(configText);
    expect(Object.keys(config)).toHaveLength(24);
    expect(configText.endsWith('}')).toBe(true);
    expect(config).toMatchObject({ peft_type: 'LORA', use_dora: true, r: 4, task_type: 'CAUSAL_LM', inference_mode: true });
    // PEFT's names and shapes: hidden 128, 4 layers, q (128→128) and v (128→64), r 4, DoRA magnitudes.
    const tensors = await readTensorFile(join(output, 'adapter_model.safetensors'));
    expect(tensors.size).toBe(4 * 2 * 3);
    expect(tensors.get('base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight')!.shape).toEqual([4, 128]);
    expect(tensors.get('base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight')!.shape).toEqual([64, 4]);
    expect(tensors.get('base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector')!.shape).toEqual([64]);
    const steps = await losses(output);
    expect(steps.map(([step]) => step)).toEqual(Array.from({ length: 12 }, (_, index) => index + 1));
    const mean = (part: [number, number][]) => part.reduce((sum, [, loss]) => sum + loss, 0) / part.length;
    expect(mean(steps.slice(-3))).toBeLessThan(mean(steps.slice(0, 3)) - 0.1);
  });

  it('after kill -9, --resume reproduces the uninterrupted run\'s losses', async () => {
    const reference = await losses(join(scratch, 'plain'));
    const output = join(scratch, 'killed');
    const child = spawn(process.execPath, [bin, ...common, '--output-dir', output], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const deadline = Date.now() + 120_000;
    while (!(await exists(join(output, 'checkpoint-4', 'trainer_state.json')))) {
      if (Date.now() > deadline || child.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    child.kill('SIGKILL');
    await exited;
    expect(await exists(join(output, 'checkpoint-4'))).toBe(true);
    expect(await exists(join(output, 'checkpoint-12'))).toBe(false);
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await main([...common, '--output-dir', output, '--resume'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(await losses(output)).toEqual(reference);
  });

  // The whole trainer path (4-bit load, DoRA, AdamW, checkpoints) on WebGPU; a software adapter is enough to check the numbers.
  it.skipIf(!webgpuAvailable)('QLoRA + DoRA on webgpu gives the wasm losses', async () => {
    const runs: Record<string, [number, number][]> = {};
    for (const backend of ['wasm', 'webgpu']) {
      const output = join(scratch, `qlora-${backend}`);
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        const code = await main([...common, '--output-dir', output, '--backend', backend, '--quant', '4bit', '--max-steps', '3', '--save-steps', '3']);
        expect(code).toBe(0);
      } finally {
        spy.mockRestore();
      }
      runs[backend] = await losses(output);
    }
    expect(runs.webgpu.map(([step]) => step)).toEqual([1, 2, 3]);
    runs.webgpu.forEach(([, loss], index) => expect(Math.abs(loss - runs.wasm[index][1])).toBeLessThan(1e-4));
  });
});
