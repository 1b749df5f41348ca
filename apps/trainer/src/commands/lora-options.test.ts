import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraConfigFileSchema } from '@peft-ts/config';
import { resolveTrainingConfig } from '../session/run-config.js';
import { addTrainingOptions, trainingOverrides, type TrainingOptions } from './training-options.js';

/** The resolved config for `train` with these arguments, without training. */
async function resolveArguments(argv: string[]) {
  const command = addTrainingOptions(new Command('train').exitOverride().configureOutput({ writeErr: () => undefined }));
  command.parse(argv, { from: 'user' });
  const options = command.opts<TrainingOptions>();
  return resolveTrainingConfig({ config: options.config, ...trainingOverrides(options) });
}

describe('LoRA options of train', () => {
  let scratch = '';
  let config = '';
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-lora-options-'));
    config = join(scratch, 'run.yaml');
    await writeFile(config, ['model: base', 'data: train.jsonl', 'output_dir: out', 'lora: { r: 16, lora_alpha: 32, use_dora: true, bias: all }'].join('\n'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('there is one for every LoRA key that is a scalar or a list, named as TRL names them', () => {
    const flags = addTrainingOptions(new Command('train')).options.map((option) => option.long);
    const loraKeys = Object.keys(loraConfigFileSchema.shape);
    // Mappings and lists of pairs stay YAML-only; the trainer sets the other three itself.
    const yamlOnly = ['auto_mapping', 'rank_pattern', 'alpha_pattern', 'megatron_config', 'loftq_config', 'layer_replication'];
    const setByTrainer = ['peft_type', 'inference_mode', 'base_model_name_or_path'];
    expect(loraKeys.filter((key) => !yamlOnly.includes(key) && !setByTrainer.includes(key))).toHaveLength(15);
    expect(flags.filter((flag) => /lora|dora/.test(flag ?? '')).sort()).toEqual(
      [
        '--lora-r',
        '--lora-alpha',
        '--lora-dropout',
        '--lora-target-modules',
        '--use-dora',
        '--no-use-dora',
        '--use-rslora',
        '--no-use-rslora',
        '--lora-bias',
        '--lora-fan-in-fan-out',
        '--no-lora-fan-in-fan-out',
        '--lora-modules-to-save',
        '--init-lora-weights',
        '--lora-layers-to-transform',
        '--lora-layers-pattern',
        '--lora-task-type',
        '--lora-revision',
        '--lora-megatron-core',
      ].sort(),
    );
  });

  it('override the lora section of the config file key by key', async () => {
    const resolved = await resolveArguments([
      '--config', config, '--lora-r', '4', '--lora-target-modules', 'q_proj,v_proj', '--lora-dropout', '0.05', '--no-use-dora', '--use-rslora',
      '--init-lora-weights', 'gaussian', '--lora-layers-to-transform', '0,2',
    ]);
    expect(resolved.lora).toMatchObject({
      r: 4,
      loraAlpha: 32,
      bias: 'all',
      targetModules: ['q_proj', 'v_proj'],
      loraDropout: 0.05,
      useDora: false,
      useRslora: true,
      initLoraWeights: 'gaussian',
      layersToTransform: [0, 2],
    });
  });

  it('a single value: a module name is a list of one, a pattern stays a string, and booleans and numbers are typed', async () => {
    const lora = async (...argv: string[]) => (await resolveArguments(['--config', config, ...argv])).lora;
    expect((await lora('--lora-target-modules', 'q_proj')).targetModules).toEqual(['q_proj']);
    expect((await lora('--lora-target-modules', 'all-linear')).targetModules).toBe('all-linear');
    expect((await lora('--lora-target-modules', '.*\\.q_proj')).targetModules).toBe('.*\\.q_proj');
    expect((await lora('--init-lora-weights', 'false')).initLoraWeights).toBe(false);
    expect((await lora('--lora-layers-to-transform', '3')).layersToTransform).toBe(3);
    expect((await lora('--lora-layers-pattern', 'layers')).layersPattern).toEqual(['layers']);
  });

  it('a bad value is blamed on the option', async () => {
    await expect(resolveArguments(['--config', config, '--lora-r', '0'])).rejects.toThrow(/^--lora-r: expected a positive integer, got 0$/);
    await expect(resolveArguments(['--config', config, '--lora-r', 'abc'])).rejects.toThrow("option '--lora-r <number>' argument 'abc' is invalid. expected a number");
    await expect(resolveArguments(['--config', config, '--lora-bias', 'some'])).rejects.toThrow(/Allowed choices are none, all, lora_only/);
    // A LoRA problem in the file itself is still reported against the file.
    await writeFile(join(scratch, 'bad.yaml'), 'model: base\ndata: train.jsonl\noutput_dir: out\nlora: { r: 0 }\n');
    await expect(resolveArguments(['--config', join(scratch, 'bad.yaml'), '--lora-alpha', '4'])).rejects.toThrow(`${join(scratch, 'bad.yaml')}: lora.r: expected a positive integer, got 0`);
  });
});
