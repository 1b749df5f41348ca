import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { doraMethod } from '@peft-ts/dora';
import { ADAPTER_WEIGHTS_FILE, LoraModel, loadAdapterStateDict, saveAdapter } from '@peft-ts/lora';
import { prepareModelForKbitTraining } from '@peft-ts/quant';
import { prepareDatasets } from '../data/prepare-datasets.js';
import { ProgressBar } from '../progress.js';
import { formatTrainingSummary } from '../report/training-summary.js';
import { writeTrainingReport } from '../report/training-report.js';
import { loadBaseModel, loadDataTokenizer, quantizationFromShorthand, type QuantizationShorthand } from '../session/load-model.js';
import { parameterReport } from '../session/parameter-report.js';
import { resolveTrainingConfig } from '../session/run-config.js';
import { trainableCausalModel } from '../session/trainable-causal-model.js';
import { TRAINER_STATE_FILE_NAME } from '../checkpoint/checkpoint-manager.js';
import { trainLoop } from '../training/train-loop.js';
import { addTrainingOptions, trainingOverrides, type TrainingOptions } from './training-options.js';

export function registerTrainCommand(program: Command): void {
  const command = program
    .command('train')
    .description('fine-tune a Hugging Face model directory with LoRA / DoRA (optionally on a 4-bit or 8-bit base)')
    .option('--resume [checkpoint]', 'continue from the latest checkpoint in output_dir (or the one given)')
    .option('--quant <bits>', 'quantize the base on load: 4bit (NF4 + double quant) or 8bit (LLM.int8)');
  addTrainingOptions(command).action(async (options: TrainingOptions & { resume?: string | true; quant?: QuantizationShorthand }) => {
    const config = await resolveTrainingConfig({ config: options.config, overrides: trainingOverrides(options) });
    const backend = await initBackend(config.backend);
    const out = process.stderr;
    out.write(`backend: ${backend.name} (${backend.detail})\n`);

    const quantization = options.quant ? quantizationFromShorthand(options.quant) : (config.quantization ?? undefined);
    let loading: ProgressBar | undefined;
    const { model } = await loadBaseModel(config.model, {
      quantization,
      strict: config.strict,
      needsTokenizer: false,
      onProgress: (done, total) => {
        loading ??= new ProgressBar(out, { label: quantization ? 'loading and quantizing' : 'loading', total });
        loading.update(done);
      },
    });
    loading?.finish();
    const tokenizer = await loadDataTokenizer(config.model);
    const quantized = Boolean(quantization?.loadIn4bit || quantization?.loadIn8bit);
    if (quantized) prepareModelForKbitTraining(model, { useGradientCheckpointing: config.gradientCheckpointing });
    else model.gradientCheckpointing = config.gradientCheckpointing;

    manualSeed(config.seed);
    // The trainer does causal-LM fine-tuning, which is what PEFT records as the task type.
    const loraConfig = { ...config.lora, taskType: config.lora.taskType ?? 'CAUSAL_LM', inferenceMode: false } as const;
    const lora = new LoraModel(model, loraConfig, { method: doraMethod });
    out.write(`${parameterReport(model).line}\n`);

    const datasets = await prepareDatasets({ ...config, tokenizer, vocabSize: model.config.vocab_size });
    out.write(
      `data: ${datasets.training.length} training and ${datasets.validation.length} validation sequences (${datasets.statistics.trainingTokens.toLocaleString('en-US')} tokens)\n`,
    );
    if (!options.resume) await rm(config.outputDir, { recursive: true, force: true });

    const controller = new AbortController();
    const interrupt = () => {
      out.write('\ninterrupted: finishing this step and saving a checkpoint…\n');
      controller.abort();
    };
    process.once('SIGINT', interrupt);
    let progress: ProgressBar | undefined;
    try {
      const result = await trainLoop({
        model: trainableCausalModel(model, () => lora.trainableParameters()),
        settings: config,
        training: datasets.training,
        validation: datasets.validation,
        padTokenId: datasets.padTokenId,
        writeAdapter: (directory) => saveAdapter(lora, directory, { baseModelNameOrPath: config.model }),
        readAdapter: async (directory) => {
          const tensors = await readTensorFile(join(directory, ADAPTER_WEIGHTS_FILE));
          try {
            loadAdapterStateDict(lora, tensors, { source: join(directory, ADAPTER_WEIGHTS_FILE) });
          } finally {
            tf.dispose([...tensors.values()]);
          }
        },
        resumeFrom: options.resume === true ? 'latest' : options.resume,
        signal: controller.signal,
        onStep: ({ step, totalSteps, loss, tokensPerSecond }) => {
          progress ??= new ProgressBar(out, { label: 'training', total: totalSteps });
          progress.update(step, { loss, tokensPerSecond });
        },
        onLog: (record) => {
          if (record.eval_loss === undefined) return;
          const line = `step ${record.step}: eval loss ${record.eval_loss.toFixed(4)}, perplexity ${record.eval_perplexity?.toFixed(2)}`;
          if (progress) progress.log(line);
          else out.write(`${line}\n`);
        },
      });
      progress?.finish();
      await saveAdapter(lora, config.outputDir, { baseModelNameOrPath: config.model });
      if (result.summary.lastCheckpoint) {
        await copyFile(join(result.summary.lastCheckpoint, TRAINER_STATE_FILE_NAME), join(config.outputDir, TRAINER_STATE_FILE_NAME));
      }
      await writeTrainingReport(config.outputDir, { summary: result.summary, records: result.metrics });
      out.write(`${formatTrainingSummary(result.summary)}\n`);
      out.write(`adapter, metrics.jsonl, trainer_state.json, report.html and loss.svg written to ${config.outputDir}\n`);
    } finally {
      process.removeListener('SIGINT', interrupt);
    }
  });
}
