import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PeftError } from '@peft-ts/core';
import { addDeprecatedAlias } from './deprecated-alias.js';
import { addModelOptions, openModel, type ModelOptions } from './model-options.js';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

export function registerMergeCommand(program: Command): void {
  const command = program
    .command('merge')
    .description('merge an adapter into a standalone Hugging Face checkpoint (expanded when layers are replicated)')
    .requiredOption('--output-dir <dir>', 'output model directory')
    .option('--safe', 'check the merged weights are finite before writing');
  addModelOptions(addDeprecatedAlias(command, '--out', '--output-dir')).action(async (options: ModelOptions & { outputDir: string; safe?: boolean }) => {
    if (options.adapter.length === 0) throw new PeftError('merge needs an --adapter directory');
    const { lora, family } = await openModel(options, false);
    const merged = await lora!.mergeAndUnload({ safeMerge: options.safe });
    await mkdir(options.outputDir, { recursive: true });
    const files = await family.save(merged, options.outputDir);
    for (const file of TOKENIZER_FILES) await copyFile(join(options.model, file), join(options.outputDir, file)).catch(() => undefined);
    process.stderr.write(`merged model (${merged.decoderConfig.num_hidden_layers} layers) written to ${options.outputDir}: ${files.join(', ')}\n`);
  });
}
