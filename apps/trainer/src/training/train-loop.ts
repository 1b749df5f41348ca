import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingConfig } from '@peft-ts/config';
import { manualSeed } from '@peft-ts/core';
import { CheckpointManager, OPTIMIZER_FILE_NAME, TRAINER_STATE_FILE_NAME } from '../checkpoint/checkpoint-manager.js';
import { trainingConfigChanges } from '../checkpoint/training-config-changes.js';
import type { LogHistoryEntry, TrainerState } from '../checkpoint/trainer-state.js';
import { BatchStream } from '../data/batch-stream.js';
import type { Batch } from '../data/collate-batch.js';
import { SeededRandom } from '@peft-ts/core';
import type { TokenizedExample } from '../data/tokenized-example.js';
import { AdamW } from '../optim/adamw.js';
import { clipGradients, globalGradientNorm } from '../optim/clip-gradients.js';
import { learningRateSchedule } from '../optim/learning-rate-schedule.js';
import { MetricsLog, type MetricsRecord } from '../report/metrics-log.js';
import type { TrainingSummary } from '../report/training-summary.js';
import { batchTensors } from './batch-tensors.js';
import { evaluateLoss, type Evaluation } from './evaluate-loss.js';
import { DivergenceMonitor } from './divergence-monitor.js';
import { NonFiniteLossError } from './non-finite-loss-error.js';
import type { TrainableModel } from './trainable-model.js';
import { TrainingDivergedError } from './training-diverged-error.js';
import { TrainingError } from './training-error.js';

export const METRICS_FILE_NAME = 'metrics.jsonl';

export type StepProgress = {
  readonly step: number;
  readonly totalSteps: number;
  readonly epoch: number;
  readonly loss: number;
  readonly learningRate: number;
  /** Non-padding tokens per second since this session started. */
  readonly tokensPerSecond: number;
};

export type TrainLoopOptions = {
  readonly model: TrainableModel;
  /** The run's resolved config; each checkpoint saves it, and a resume lists what changed since. */
  readonly settings: TrainingConfig;
  readonly training: readonly TokenizedExample[];
  readonly validation?: readonly TokenizedExample[];
  readonly padTokenId: number;
  /** Writes the trained weights (the adapter) into a checkpoint directory. */
  readonly writeAdapter: (directory: string) => Promise<void>;
  /** Loads what `writeAdapter` wrote back into the model, when resuming. */
  readonly readAdapter: (directory: string) => Promise<void>;
  /** A checkpoint directory to continue from, or 'latest' for the newest one in the output directory. */
  readonly resumeFrom?: string;
  /** When aborted (the CLI connects SIGINT), the current step finishes, a checkpoint is saved and the loop returns. */
  readonly signal?: AbortSignal;
  /** Called with each metrics.jsonl record (a logging and/or evaluation step). */
  readonly onLog?: (record: MetricsRecord) => void | Promise<void>;
  /** Called after every optimizer step. */
  readonly onStep?: (progress: StepProgress) => void | Promise<void>;
  /** Called once the checkpoint to resume from is read, before it is checked against this run. */
  readonly onResume?: (resume: ResumeInfo) => void | Promise<void>;
};

export type ResumeInfo = {
  readonly directory: string;
  readonly step: number;
  /** Settings that differ from the checkpoint's (`learning_rate 0.0001 → 0.0002`); null when it saved no config. */
  readonly configChanges: readonly string[] | null;
};

export type TrainLoopResult = {
  readonly summary: TrainingSummary;
  /** The whole run's log history (across resumes), ending with transformers' end-of-training entry. */
  readonly logHistory: LogHistoryEntry[];
  /** The whole run's metrics.jsonl records, for the report. */
  readonly metrics: MetricsRecord[];
};

/** Keeps the per-step dropout seeds apart from the data order drawn from the same run seed. */
const dropoutStream = 0xd209_0b7e;

/**
 * The training loop of transformers' Trainer for one device: gradient accumulation (mean over micro-batches),
 * global-norm clipping, AdamW with a warmup schedule, logging, evaluation and checkpoints every so many steps, and
 * an exact resume. Resuming reproduces an uninterrupted run bit for bit: the data order is a function of the seed
 * and epoch, core's random stream (dropout) is reseeded from (seed, step) before every step, and the optimizer state
 * and running loss sums are restored from the checkpoint.
 */
export async function trainLoop(options: TrainLoopOptions): Promise<TrainLoopResult> {
  const { model, settings, signal } = options;
  const validation = options.validation ?? [];
  const batchSize = settings.perDeviceTrainBatchSize;
  const accumulation = settings.gradientAccumulationSteps;
  const evalSteps = settings.evalSteps ?? settings.loggingSteps;
  const stream = new BatchStream(options.training, { batchSize, seed: settings.seed, padTokenId: options.padTokenId });
  // A step never spans two epochs: an epoch's last step may take fewer micro-batches, as in transformers.
  const stepsPerEpoch = Math.ceil(stream.batchesPerEpoch / accumulation);
  const totalSteps = settings.maxSteps > 0 ? settings.maxSteps : Math.ceil(settings.numTrainEpochs * stepsPerEpoch);
  const schedule = learningRateSchedule({
    type: settings.lrSchedulerType,
    learningRate: settings.learningRate,
    warmupSteps: settings.warmupSteps,
    totalSteps,
  });
  const parameters = model.trainableParameters();
  if (parameters.length === 0) throw new TrainingError('the model has no trainable parameters');
  // transformers' Trainer exempts biases and normalisation weights from weight decay.
  const optimizer = new AdamW(parameters, {
    weightDecay: settings.weightDecay,
    decays: (name) => !name.includes('bias') && !/norm/i.test(name),
  });
  const variables = parameters.map(([, parameter]) => parameter.value);
  const parameterNames = new Map(parameters.map(([name, parameter]) => [parameter.value.name, name]));
  const checkpoints = new CheckpointManager(settings.outputDir, { saveTotalLimit: settings.saveTotalLimit });

  let globalStep = 0;
  let logHistory: LogHistoryEntry[] = [];
  let lossSinceLog = { sum: 0, steps: 0 };
  let totalLoss = 0;
  let tokensSeen = 0;
  let bestMetric: number | null = null;
  let bestModelCheckpoint: string | null = null;
  let lastCheckpoint: string | null = null;
  let divergence = new DivergenceMonitor(settings);
  // Checkpoints compete on eval loss when there is a validation set, else on the smoothed training loss.
  const bestMetricName = validation.length > 0 ? 'eval loss' : 'smoothed training loss';

  try {
    if (options.resumeFrom !== undefined) {
      const directory =
        options.resumeFrom === 'latest' ? await CheckpointManager.latest(settings.outputDir) : options.resumeFrom;
      if (directory === null) throw new TrainingError(`${settings.outputDir}: no complete checkpoint to resume from; run without --resume to start a new run`);
      const checkpoint = await CheckpointManager.load(directory);
      const state = checkpoint.trainerState;
      const statePath = join(directory, TRAINER_STATE_FILE_NAME);
      try {
        await options.onResume?.({
          directory,
          step: state.global_step,
          configChanges: checkpoint.trainingConfig && trainingConfigChanges(checkpoint.trainingConfig, settings),
        });
        // The data order depends on these; with others the resumed run would not be the one that was saved.
        for (const [field, saved, current] of [
          ['seed', state.seed, settings.seed],
          ['train_batch_size', state.train_batch_size, batchSize],
          ['gradient_accumulation_steps', state.gradient_accumulation_steps, accumulation],
          ['train_examples', state.train_examples, options.training.length],
        ] as const) {
          if (saved !== current) {
            throw new TrainingError(
              `${statePath}: ${field} is ${saved} but this run has ${current}; resuming would not continue the same run`,
            );
          }
        }
        await options.readAdapter(directory);
        await optimizer.loadState(checkpoint.optimizerState, join(directory, OPTIMIZER_FILE_NAME));
      } finally {
        tf.dispose([...checkpoint.optimizerState.values()]);
      }
      stream.seek(state.data_cursor);
      globalStep = state.global_step;
      logHistory = [...state.log_history];
      lossSinceLog = { ...state.loss_since_last_log };
      totalLoss = state.total_loss;
      tokensSeen = state.num_input_tokens_seen;
      bestMetric = state.best_metric;
      bestModelCheckpoint = state.best_model_checkpoint;
      divergence = new DivergenceMonitor(settings, state.divergence);
      lastCheckpoint = directory;
    }
    const firstStep = globalStep;
    await mkdir(settings.outputDir, { recursive: true });
    const metricsLog = await MetricsLog.open(join(settings.outputDir, METRICS_FILE_NAME), { keepThroughStep: globalStep });

    const sessionStart = performance.now();
    let sessionTokens = 0;
    let sessionExamples = 0;
    // Throughput since the last log counts optimizer steps only, not evaluation or checkpoint writing.
    let sinceLog = { tokens: 0, seconds: 0 };
    let lastEvaluation: { step: number; result: Evaluation } | null = null;
    let lastSavedStep = globalStep;

    const trainerState = (): TrainerState => ({
      best_metric: bestMetric,
      best_model_checkpoint: bestModelCheckpoint,
      epoch: stream.epochProgress,
      eval_steps: evalSteps,
      global_step: globalStep,
      is_hyper_param_search: false,
      is_local_process_zero: true,
      is_world_process_zero: true,
      log_history: logHistory,
      logging_steps: settings.loggingSteps,
      max_steps: totalSteps,
      num_input_tokens_seen: tokensSeen,
      num_train_epochs: Math.ceil(totalSteps / stepsPerEpoch),
      save_steps: settings.saveSteps,
      total_flos: 0,
      train_batch_size: batchSize,
      trial_name: null,
      trial_params: null,
      data_cursor: stream.cursor,
      seed: settings.seed,
      gradient_accumulation_steps: accumulation,
      train_examples: options.training.length,
      loss_since_last_log: lossSinceLog,
      total_loss: totalLoss,
      divergence: divergence.state,
    });

    const save = async () => {
      const directory = join(settings.outputDir, `checkpoint-${globalStep}`);
      // As transformers does with eval_loss as the metric: a checkpoint is best when its step's evaluation is.
      // Without validation data, the smoothed training loss stands in for it.
      const metric = validation.length > 0 ? (lastEvaluation?.step === globalStep ? lastEvaluation.result.loss : null) : divergence.smoothedLoss;
      if (metric !== null && (bestMetric === null || metric < bestMetric)) {
        bestMetric = metric;
        bestModelCheckpoint = directory;
      }
      const optimizerState = optimizer.state();
      try {
        lastCheckpoint = await checkpoints.save({
          trainerState: trainerState(),
          optimizerState,
          writeAdapter: options.writeAdapter,
          trainingConfig: settings,
        });
      } finally {
        tf.dispose([...optimizerState.values()]);
      }
      lastSavedStep = globalStep;
    };

    const evaluate = async (): Promise<Partial<MetricsRecord>> => {
      const result = await evaluateLoss(model, validation, batchSize, options.padTokenId);
      model.train();
      lastEvaluation = { step: globalStep, result };
      logHistory.push({
        eval_loss: result.loss,
        eval_runtime: result.runtimeSeconds,
        eval_samples_per_second: result.examples / result.runtimeSeconds,
        eval_steps_per_second: result.batches / result.runtimeSeconds,
        epoch: stream.epochProgress,
        step: globalStep,
      });
      return { eval_loss: result.loss, eval_perplexity: result.perplexity };
    };

    const record = async (entry: MetricsRecord) => {
      await metricsLog.append(entry);
      await options.onLog?.(entry);
    };

    model.train();
    while (globalStep < totalSteps && !signal?.aborted) {
      manualSeed(new SeededRandom(settings.seed, globalStep, dropoutStream).nextUint32());
      const batches = Array.from({ length: Math.min(accumulation, stream.remainingBatchesInEpoch) }, () => stream.next());
      const learningRate = schedule(globalStep);
      const stepStart = performance.now();
      const step = await optimizerStep(batches, learningRate, globalStep + 1);
      globalStep += 1;
      const tokens = batches.reduce((sum, batch) => sum + batch.attentionMask.reduce((count, bit) => count + bit, 0), 0);
      sessionTokens += tokens;
      sessionExamples += batches.reduce((sum, batch) => sum + batch.batchSize, 0);
      sinceLog = { tokens: sinceLog.tokens + tokens, seconds: sinceLog.seconds + (performance.now() - stepStart) / 1000 };
      tokensSeen += tokens;
      lossSinceLog = { sum: lossSinceLog.sum + step.loss, steps: lossSinceLog.steps + 1 };
      totalLoss += step.loss;

      let entry: MetricsRecord | null = null;
      if (globalStep % settings.loggingSteps === 0) {
        // transformers logs the rate the scheduler has just moved to, i.e. that of the next step.
        const logged = {
          loss: lossSinceLog.sum / lossSinceLog.steps,
          grad_norm: step.gradientNorm,
          learning_rate: schedule(globalStep),
          epoch: stream.epochProgress,
          step: globalStep,
        };
        logHistory.push(logged);
        entry = { ...logged, tokens_per_second: sinceLog.tokens / sinceLog.seconds };
        lossSinceLog = { sum: 0, steps: 0 };
        sinceLog = { tokens: 0, seconds: 0 };
      }
      // Also after the last step, so the run ends with a known eval loss, and at every save, so each periodic
      // checkpoint has an eval loss to be judged the best by.
      const saving = globalStep % settings.saveSteps === 0;
      if (validation.length > 0 && (globalStep % evalSteps === 0 || globalStep === totalSteps || saving)) {
        entry = { ...(entry ?? { step: globalStep, epoch: stream.epochProgress }), ...(await evaluate()) };
      }
      if (entry) await record(entry);
      if (saving) await save();
      await options.onStep?.({
        step: globalStep,
        totalSteps,
        epoch: stream.epochProgress,
        loss: step.loss,
        learningRate,
        tokensPerSecond: sessionTokens / ((performance.now() - sessionStart) / 1000),
      });
    }

    const completed = globalStep >= totalSteps;
    if (globalStep > lastSavedStep) await save();

    const runtimeSeconds = (performance.now() - sessionStart) / 1000;
    const sessionSteps = globalStep - firstStep;
    const finalHistory: LogHistoryEntry[] = [
      ...logHistory,
      {
        train_runtime: runtimeSeconds,
        train_samples_per_second: sessionExamples / runtimeSeconds,
        train_steps_per_second: sessionSteps / runtimeSeconds,
        total_flos: 0,
        train_loss: globalStep > 0 ? totalLoss / globalStep : null,
        epoch: stream.epochProgress,
        step: globalStep,
      },
    ];
    const trainingLogs = logHistory.filter((entry) => typeof entry.loss === 'number');
    const evaluations = logHistory.filter((entry) => typeof entry.eval_loss === 'number');
    const lastEval = evaluations.at(-1)?.eval_loss ?? null;
    return {
      summary: {
        status: completed ? 'completed' : 'interrupted',
        globalStep,
        maxSteps: totalSteps,
        epoch: stream.epochProgress,
        trainingLoss: globalStep > 0 ? totalLoss / globalStep : null,
        finalLoss: trainingLogs.at(-1)?.loss ?? null,
        evalLoss: lastEval,
        evalPerplexity: lastEval === null ? null : Math.exp(lastEval),
        bestEvalLoss: evaluations.length ? Math.min(...evaluations.map((entry) => entry.eval_loss as number)) : null,
        runtimeSeconds,
        tokensPerSecond: sessionSteps > 0 ? sessionTokens / runtimeSeconds : null,
        lastCheckpoint,
        bestCheckpoint: bestModelCheckpoint,
      },
      logHistory: finalHistory,
      metrics: await MetricsLog.read(join(settings.outputDir, METRICS_FILE_NAME)),
    };
  } finally {
    optimizer.dispose();
  }

  /**
   * One optimizer step over `batches`: gradients averaged over the micro-batches, clipped, applied. A non-finite
   * loss or gradient norm stops before anything is applied, so neither the weights nor any checkpoint see it.
   */
  async function optimizerStep(
    batches: Batch[],
    learningRate: number,
    step: number,
  ): Promise<{ loss: number; gradientNorm: number }> {
    const owned: tf.Tensor[] = [];
    try {
      let summed: Map<string, tf.Tensor> | null = null;
      const losses: number[] = [];
      for (const batch of batches) {
        const { value, grads } = tf.tidy(() => tf.variableGrads(() => model.loss(batchTensors(batch)), variables));
        // A parameter whose variable is not trainable gets a null gradient: like PyTorch's None, it is not updated.
        const present = Object.entries(grads).filter(([, gradient]) => gradient != null);
        owned.push(value, ...present.map(([, gradient]) => gradient));
        losses.push((await value.data())[0]);
        const named = new Map(present.map(([variable, gradient]) => [parameterNames.get(variable)!, gradient]));
        summed = summed === null ? named : addGradients(summed, named, owned);
      }
      const loss = losses.reduce((sum, value) => sum + value, 0) / losses.length;
      const failed = losses.findIndex((value) => !Number.isFinite(value));
      if (failed >= 0) {
        throw nonFinite(step, `training loss is ${losses[failed]} (micro-batch ${failed + 1} of ${losses.length})`);
      }
      const mean = batches.length === 1 ? summed! : scaleGradients(summed!, 1 / batches.length, owned);
      const clipped = settings.maxGradNorm > 0 ? clipGradients(mean, settings.maxGradNorm) : null;
      const gradients = clipped?.gradients ?? mean;
      const totalNorm = clipped?.totalNorm ?? globalGradientNorm(mean);
      owned.push(totalNorm, ...gradients.values());
      const gradientNorm = (await totalNorm.data())[0];
      if (!Number.isFinite(gradientNorm)) throw nonFinite(step, `gradient norm is ${gradientNorm} (loss ${loss})`);
      const diverged = divergence.observe(loss, gradientNorm);
      if (diverged) {
        throw new TrainingDivergedError(
          `step ${step}: ${diverged.what}; training stopped without applying this step. ${keptCheckpoints()}. ` +
            `Lower learning_rate (now ${settings.learningRate}), or raise ${diverged.setting} ` +
            `(--${diverged.setting.replaceAll('_', '-')}); 0 turns the check off`,
          step,
          lastCheckpoint,
          bestModelCheckpoint,
        );
      }
      optimizer.step(gradients, learningRate);
      return { loss, gradientNorm };
    } finally {
      tf.dispose(owned);
    }
  }

  function nonFinite(step: number, what: string): NonFiniteLossError {
    return new NonFiniteLossError(
      `step ${step}: ${what}; training stopped without applying this step. ${keptCheckpoints()}`,
      step,
      lastCheckpoint,
      bestModelCheckpoint,
    );
  }

  /** Where a stopped run's good weights are. */
  function keptCheckpoints(): string {
    if (bestModelCheckpoint !== null) {
      const last = lastCheckpoint !== null && lastCheckpoint !== bestModelCheckpoint ? `; the last is ${lastCheckpoint}` : '';
      return `The best checkpoint is ${bestModelCheckpoint} (${bestMetricName} ${bestMetric!.toFixed(4)})${last}`;
    }
    return lastCheckpoint !== null ? `The last checkpoint is ${lastCheckpoint}` : 'No checkpoint had been saved yet';
  }
}

function addGradients(
  sum: Map<string, tf.Tensor>,
  more: Map<string, tf.Tensor>,
  owned: tf.Tensor[],
): Map<string, tf.Tensor> {
  const result = new Map(sum);
  for (const [name, gradient] of more) {
    const previous = result.get(name);
    const added = previous ? tf.add(previous, gradient) : gradient;
    if (previous) owned.push(added);
    result.set(name, added);
  }
  return result;
}

function scaleGradients(gradients: Map<string, tf.Tensor>, factor: number, owned: tf.Tensor[]): Map<string, tf.Tensor> {
  const result = new Map<string, tf.Tensor>();
  for (const [name, gradient] of gradients) {
    const scaled = tf.mul(gradient, factor);
    owned.push(scaled);
    result.set(name, scaled);
  }
  return result;
}
