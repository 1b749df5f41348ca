import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { PeftError, readTensorFile, writeTensorFile } from '@peft-ts/core';
import { addDeprecatedAlias } from './deprecated-alias.js';
import { addModelOptions, openModel, type ModelOptions } from './model-options.js';
import { existingPath } from './option-path.js';

/** `peft-ts logits`: float32 logits for stored input ids, the tool for checking parity with Python. */
export function registerLogitsCommand(program: Command): void {
  const command = program
    .command('logits')
    .description('write float32 logits [B,T,V] for input_ids [B,T] read from a safetensors file')
    .requiredOption('--input <file>', 'safetensors with int input_ids [B,T] and optional attention_mask')
    .requiredOption('--output-file <file>', 'safetensors file to write `logits` to')
    .option('--merge', 'merge the active adapter into the weights first')
    .option('--disable-adapters', 'compute with adapters disabled');
  addModelOptions(addDeprecatedAlias(command, '--out', '--output-file')).action(
    async (options: ModelOptions & { input: string; outputFile: string; merge?: boolean; disableAdapters?: boolean }) => {
      const { model, lora } = await openModel(options, false);
      await existingPath('--input', options.input);
      const inputs = await readTensorFile(options.input);
      const inputIds = inputs.get('input_ids');
      if (!inputIds || inputIds.rank !== 2 || inputIds.dtype !== 'int32') {
        throw new PeftError(`${options.input}: expected an integer tensor 'input_ids' [batch, length]`);
      }
      const attentionMask = inputs.get('attention_mask') ?? null;
      if ((options.merge || options.disableAdapters) && !lora) throw new PeftError('--merge and --disable-adapters need an --adapter');
      const target = options.merge ? await lora!.mergeAndUnload() : model;
      const compute = () => tf.tidy(() => target.forward({ inputIds: inputIds as tf.Tensor2D, attentionMask }).logits);
      const logits = options.disableAdapters ? await lora!.withAdaptersDisabled(compute) : compute();
      await writeTensorFile(options.outputFile, new Map([['logits', logits]]), { format: 'pt' });
      process.stderr.write(`logits [${logits.shape}] written to ${options.outputFile}\n`);
    },
  );
}
