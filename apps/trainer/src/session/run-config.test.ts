import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTrainingConfig } from './run-config.js';

describe('resolveTrainingConfig', () => {
  let scratch = '';
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-run-config-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('--data replaces only the training file of a config with a validation file', async () => {
    const file = join(scratch, 'run.yaml');
    await writeFile(file, ['model: base', 'output_dir: out', 'data:', '  train: train.jsonl', '  validation: valid.jsonl'].join('\n'));
    const config = await resolveTrainingConfig({ config: file, overrides: { data: 'other.jsonl' } });
    expect(config.data).toEqual({ train: resolve('other.jsonl'), validation: join(scratch, 'valid.jsonl') });
    const unchanged = await resolveTrainingConfig({ config: file, overrides: {} });
    expect(unchanged.data).toEqual({ train: join(scratch, 'train.jsonl'), validation: join(scratch, 'valid.jsonl') });
  });

  it('--data replaces a single data file, and keeps validation_split', async () => {
    const file = join(scratch, 'split.yaml');
    await writeFile(file, ['model: base', 'output_dir: out', 'data: train.jsonl', 'validation_split: 0.25'].join('\n'));
    const config = await resolveTrainingConfig({ config: file, overrides: { data: 'other.jsonl' } });
    expect(config).toMatchObject({ data: resolve('other.jsonl'), validationSplit: 0.25 });
  });
});
