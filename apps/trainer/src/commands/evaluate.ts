import type { Command } from 'commander';
import { createTrainingConfig } from '@peft-ts/config';
import { prepareDatasets } from '../data/prepare-datasets.js';
import { loadDataTokenizer } from '../session/load-model.js';
import { trainableCausalModel } from '../session/trainable-causal-model.js';
import { evaluateLoss } from '../training/evaluate-loss.js';
import { addDeprecatedAlias } from './deprecated-alias.js';
import { addModelOptions, openModel, type ModelOptions } from './model-options.js';
import { numberOption } from './numeric-option.js';

export function registerEvalCommand(program: Command): void {
  const command = program
    .command('eval')
    .description('mean loss and perplexity of the model (with its adapters) on a JSONL file')
    .requiredOption('--data <file>', 'JSONL (text, messages, prompt/completion or input_ids)')
    .option('--max-seq-length <length>', 'tokens per sequence', numberOption('positiveInteger'), 512)
    .option('--per-device-eval-batch-size <size>', 'sequences per batch', numberOption('positiveInteger'), 8)
    .option('--disable-adapters', 'evaluate the base model')
    .option('--json', 'print JSON');
  addModelOptions(addDeprecatedAlias(command, '--batch-size', '--per-device-eval-batch-size')).action(
    async (options: ModelOptions & { data: string; maxSeqLength: number; perDeviceEvalBatchSize: number; disableAdapters?: boolean; json?: boolean }) => {
      const { model, lora } = await openModel(options, false);
      const tokenizer = await loadDataTokenizer(options.model);
      const settings = createTrainingConfig({ model: options.model, data: { train: options.data }, outputDir: '.', maxSeqLength: options.maxSeqLength });
      const { training, padTokenId } = await prepareDatasets({ ...settings, tokenizer, vocabSize: model.decoderConfig.vocab_size });
      const run = () => evaluateLoss(trainableCausalModel(model, () => []), training, options.perDeviceEvalBatchSize, padTokenId);
      const evaluation = options.disableAdapters && lora ? await lora.withAdaptersDisabled(run) : await run();
      const { loss, perplexity, examples } = evaluation;
      process.stdout.write(
        options.json ? `${JSON.stringify({ loss, perplexity, sequences: examples })}\n` : `eval loss ${loss.toFixed(4)}, perplexity ${perplexity.toFixed(2)} over ${examples} sequences\n`,
      );
    },
  );
}
