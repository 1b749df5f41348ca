import { copyFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { ADAPTER_WEIGHTS_FILE, LoraModel, loadAdapterStateDict, saveAdapter } from '@peft-ts/lora';
import { prepareModelForKbitTraining } from '@peft-ts/quant';
import { adapterMethod } from '../session/adapter-method.js';
import { prepareDatasets } from '../data/prepare-datasets.js';
import { ProgressBar } from '../progress.js';
import { formatTrainingSummary } from '../report/training-summary.js';
import { writeTrainingReport } from '../report/training-report.js';
import { loadBaseModel, loadDataTokenizer, quantizationFromShorthand, type QuantizationShorthand } from '../session/load-model.js';
import { checkOutputDirectory, removePreviousRun } from '../session/output-directory.js';
import { parameterReport } from '../session/parameter-report.js';
import { resolveTrainingConfig } from '../session/run-config.js';
import { trainableCausalModel } from '../session/trainable-causal-model.js';
import { TRAINER_STATE_FILE_NAME, TRAINING_CONFIG_FILE_NAME } from '../checkpoint/checkpoint-manager.js';
import { trainLoop } from '../training/train-loop.js';
import { addTrainingOptions, trainingOverrides, type TrainingOptions } from './training-options.js';

export function registerTrainCommand(program: Command): void {
  const command = program
    .command('train')
    .description('fine-tune a Hugging Face model directory with LoRA / DoRA (optionally on a 4-bit or 8-bit base)')
    .option('--resume [checkpoint]', 'continue from the latest checkpoint in output_dir (or the one given)')
    .option('--quant <bits>', 'quantize the base on load: 4bit (NF4 + double quant) or 8bit (LLM.int8)');
  addTrainingOptions(command).action(async (options: TrainingOptions & { resume?: string | true; quant?: QuantizationShorthand }) => {
    const config = await resolveTrainingConfig({ config: options.config, ...trainingOverrides(options) });
    const out = process.stderr;
    const resume = options.resume !== undefined;
    const dataFiles = typeof config.data === 'string' ? { train: config.data } : config.data;
    const outputContents = await checkOutputDirectory({
      outputDir: config.outputDir,
      resume,
      overwrite: config.overwriteOutputDir,
      inputs: [
        { path: config.model, what: 'base model directory (model)' },
        { path: dataFiles.train, what: 'training data (data)' },
        ...(dataFiles.validation ? [{ path: dataFiles.validation, what: 'validation data (data.validation)' }] : []),
      ],
    });
    if (options.data && dataFiles.validation) {
      out.write(`data: --data replaces the training file; the validation file ${dataFiles.validation} from ${options.config} is kept\n`);
    }
    if (resume && config.overwriteOutputDir) out.write('overwrite_output_dir is ignored with --resume: the run continues in place\n');
    const backend = await initBackend(config.backend);
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
    const lora = new LoraModel(model, loraConfig, { method: adapterMethod });
    out.write(`${parameterReport(model).line}\n`);

    const datasets = await prepareDatasets({ ...config, tokenizer, vocabSize: model.decoderConfig.vocab_size });
    out.write(
      `data: ${datasets.training.length} training and ${datasets.validation.length} validation sequences (${datasets.statistics.trainingTokens.toLocaleString('en-US')} tokens)\n`,
    );
    // Only now, so that a run failing on its model or data leaves the previous run's files alone.
    if (!resume && outputContents.runEntries.length > 0) {
      const removed = await removePreviousRun(config.outputDir);
      const kept = outputContents.otherEntries.length ? `; kept ${outputContents.otherEntries.join(', ')}` : '';
      out.write(`overwrite_output_dir: removed the previous run's ${removed.join(', ')} from ${config.outputDir}${kept}\n`);
    }

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
        onResume: ({ directory, step, configChanges }) => {
          out.write(`resuming from ${basename(directory)} (${directory}), step ${step}\n`);
          if (configChanges === null) {
            out.write(`warning: ${directory} has no ${TRAINING_CONFIG_FILE_NAME} (written by an older peft-ts), so settings changed since cannot be listed\n`);
          } else if (configChanges.length > 0) {
            out.write(`warning: settings changed since ${basename(directory)} was saved: ${configChanges.join(', ')}\n`);
          }
        },
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
    } catch (error) {
      // End the progress line, so the error is not printed after the bar.
      progress?.finish();
      throw error;
    } finally {
      process.removeListener('SIGINT', interrupt);
    }
  });
}
