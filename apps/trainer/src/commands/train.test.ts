import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
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

/** Runs the CLI with stderr captured. */
async function runCli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await main(args), stderr };
  } finally {
    spy.mockRestore();
  }
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
    const resumed = await runCli([...common, '--output-dir', output, '--resume']);
    expect(resumed.code).toBe(0);
    const latest = /resuming from checkpoint-(\d+) \((.*)\), step (\d+)\n/.exec(resumed.stderr);
    expect(latest).not.toBeNull();
    expect([latest![2], latest![3]]).toEqual([join(output, `checkpoint-${latest![1]}`), latest![1]]);
    expect(resumed.stderr).not.toContain('warning:');
    expect(await losses(output)).toEqual(reference);
  });

  it('refuses an output dir holding the data, or other files, and deletes nothing', async () => {
    const before = (await readdir(scratch)).sort();
    const intoData = await runCli([...common, '--output-dir', scratch, '--overwrite-output-dir']);
    expect(intoData.code).toBe(1);
    expect(intoData.stderr).toContain(`error: output_dir ${scratch} contains the training data (data) ${join(scratch, 'train.jsonl')}; `);
    expect((await readdir(scratch)).sort()).toEqual(before);

    const foreign = join(scratch, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'model.safetensors'), 'weights');
    const refused = await runCli([...common, '--output-dir', foreign]);
    expect(refused).toEqual({
      code: 1,
      stderr:
        `error: output_dir ${foreign} is not empty and holds no training run (model.safetensors); choose a new or empty --output-dir, ` +
        'or pass --overwrite-output-dir (overwrite_output_dir: true) to train there anyway: only the files a run writes are replaced, others are kept\n',
    });
    expect(await readdir(foreign)).toEqual(['model.safetensors']);
  });

  it('says that the output dir cannot be created before loading the model', async () => {
    const file = join(scratch, 'train.jsonl');
    const result = await runCli([...common, '--output-dir', join(file, 'run')]);
    // Nothing else was printed: the check came before the backend and the model.
    expect(result).toEqual({
      code: 1,
      stderr: `error: output_dir ${join(file, 'run')} cannot be created: ${file} is a file, not a directory; choose another --output-dir (output_dir)\n`,
    });
  });

  it('refuses to start over in a previous run without --overwrite-output-dir, which then replaces only the run\'s files', async () => {
    const output = join(scratch, 'again');
    const short = [...common, '--output-dir', output, '--max-steps', '4'];
    expect((await runCli(short)).code).toBe(0);
    await writeFile(join(output, 'notes.txt'), 'mine');
    const refused = await runCli(short);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`^error: output_dir ${output} holds a previous training run \\(adapter_config.json, .*\\); pass --resume to continue it, or --overwrite-output-dir`));
    expect(await exists(join(output, 'checkpoint-4'))).toBe(true);

    const overwritten = await runCli([...common, '--output-dir', output, '--max-steps', '2', '--overwrite-output-dir']);
    expect(overwritten.code).toBe(0);
    expect(overwritten.stderr).toContain(
      `overwrite_output_dir: removed the previous run's adapter_config.json, adapter_model.safetensors, checkpoint-2, checkpoint-4, loss.svg, metrics.jsonl, report.html, trainer_state.json from ${output}; kept notes.txt\n`,
    );
    expect((await readdir(output)).sort()).toEqual(
      ['adapter_config.json', 'adapter_model.safetensors', 'checkpoint-2', 'loss.svg', 'metrics.jsonl', 'notes.txt', 'report.html', 'trainer_state.json'],
    );
    expect((await losses(output)).map(([step]) => step)).toEqual([1, 2]);

    const resumed = await runCli([...common, '--output-dir', output, '--max-steps', '3', '--learning-rate', '0.02', '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain(
      `resuming from checkpoint-2 (${join(output, 'checkpoint-2')}), step 2\n` +
        'warning: settings changed since checkpoint-2 was saved: learning_rate 0.01 → 0.02, max_steps 2 → 3\n',
    );
  });

  it('stops a run diverging at learning_rate 1e6 with an error, keeping the best checkpoint through save_total_limit', async () => {
    const output = join(scratch, 'diverged');
    const result = await runCli([...common, '--output-dir', output, '--learning-rate', '1e6', '--save-total-limit', '1']);
    expect(result.code).toBe(1);
    const best = join(output, 'checkpoint-2');
    expect(result.stderr).toMatch(
      new RegExp(
        '\\nerror: step 5: the gradient norm has vanished \\(.*\\) for 3 consecutive steps while the smoothed loss .* \\(zero_grad_norm_steps\\): ' +
          `nothing is being learned; training stopped without applying this step\\. The best checkpoint is ${best} \\(smoothed training loss \\d+\\.\\d{4}\\); ` +
          `the last is ${join(output, 'checkpoint-4')}\\. Lower learning_rate \\(now 1000000\\), or raise zero_grad_norm_steps \\(--zero-grad-norm-steps\\); 0 turns the check off\\n$`,
      ),
    );
    expect((await readdir(output)).sort()).toEqual(['checkpoint-2', 'checkpoint-4', 'metrics.jsonl']);
  });

  it('--data replaces the training file and keeps the validation file of the config', async () => {
    const lines = (await readFile(join(demo, 'data', 'validation.jsonl'), 'utf8')).split('\n').slice(0, 8).join('\n');
    await writeFile(join(scratch, 'valid.jsonl'), `${lines}\n`);
    const config = join(scratch, 'with-validation.yaml');
    const yaml = (await readFile(join(scratch, 'run.yaml'), 'utf8')).replace('data: train.jsonl', 'data: { train: missing.jsonl, validation: valid.jsonl }');
    await writeFile(config, yaml);
    const output = join(scratch, 'validated');
    const result = await runCli(['train', '--config', config, '--data', join(scratch, 'train.jsonl'), '--output-dir', output, '--max-steps', '1']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`data: --data replaces the training file; the validation file ${join(scratch, 'valid.jsonl')} from ${config} is kept\n`);
    expect(result.stderr).toMatch(/data: \d+ training and 8 validation sequences/);
    const records = (await readFile(join(output, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line));
    expect(records.at(-1).eval_loss).toBeGreaterThan(0);
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
