import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from '@peft-ts/core/test';
import { mistralFamily } from '@peft-ts/model-mistral';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelTypeError, presetModelConfig, readModelConfig, readModelType } from './model-registry.js';

describe('model registry', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-model-registry-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  const modelDirectory = async (name: string, config: string | null) => {
    const directory = join(scratch, name);
    await mkdir(directory, { recursive: true });
    if (config !== null) await writeFile(join(directory, 'config.json'), config);
    return directory;
  };

  it("picks the family by config.json's model_type and validates the config with it", async () => {
    expect(await readModelType(fixturePath('mistral', 'base_model'))).toBe('mistral');
    const { family, config } = await readModelConfig(fixturePath('mistral', 'base_model'));
    expect(family).toBe(mistralFamily);
    expect(config.num_hidden_layers).toBe(5);
  });

  it('names the file, the model_type and the supported ones when no family fits', async () => {
    const llama = await modelDirectory('llama', JSON.stringify({ model_type: 'llama', hidden_size: 64 }));
    await expect(readModelType(llama)).rejects.toThrow(new ModelTypeError(`${join(llama, 'config.json')}: model_type "llama" is not supported (supported: 'mistral')`));
    const untyped = await modelDirectory('untyped', JSON.stringify({ hidden_size: 64 }));
    await expect(readModelType(untyped)).rejects.toThrow(`${join(untyped, 'config.json')}: has no model_type (supported: 'mistral')`);
    const broken = await modelDirectory('broken', '{"model_type": ');
    await expect(readModelType(broken)).rejects.toThrow(`${join(broken, 'config.json')}: not valid JSON (`);
    const empty = await modelDirectory('empty', null);
    await expect(readModelType(empty)).rejects.toThrow(`${join(empty, 'config.json')}: not found (a Hugging Face model directory needs a config.json)`);
  });

  it("reports a broken field through the family's own parser", async () => {
    const bad = await modelDirectory('bad-heads', JSON.stringify({ model_type: 'mistral', num_attention_heads: '4' }));
    await expect(readModelConfig(bad)).rejects.toThrow(`${join(bad, 'config.json')}: num_attention_heads: expected a positive integer, got "4"`);
  });

  it('finds presets by name across the families', () => {
    expect(presetModelConfig('mistral-7b-v0.1')?.config.num_hidden_layers).toBe(32);
    expect(presetModelConfig('no-such-preset')).toBeUndefined();
  });
});
