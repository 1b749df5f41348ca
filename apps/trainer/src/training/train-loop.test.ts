import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describeWithBackends } from '@peft-ts/core/test';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { CheckpointManager } from '../checkpoint/checkpoint-manager.js';
import { MetricsLog } from '../report/metrics-log.js';
import { NonFiniteLossError } from './non-finite-loss-error.js';
import type { ToyLanguageModel } from './testing/toy-language-model.js';
import { runToyTraining, type ToyTrainingOptions } from './testing/toy-training.js';
import type { TrainableModel } from './trainable-model.js';
import type { ResumeInfo } from './train-loop.js';
import { TrainingDivergedError } from './training-diverged-error.js';
import { TrainingError } from './training-error.js';

const losses = (history: { step: number; loss?: number | null }[]) =>
  history.filter((entry) => entry.loss !== undefined).map((entry) => [entry.step, entry.loss]);
const evalLosses = (history: { step: number; eval_loss?: number | null }[]) =>
  history.filter((entry) => entry.eval_loss !== undefined).map((entry) => [entry.step, entry.eval_loss]);

/** The toy model with its training-mode loss replaced by `corrupt(call, loss)`, call counting from 1 (evaluation left alone). */
function corruptTrainingLoss(model: ToyLanguageModel, corrupt: (call: number, loss: tf.Scalar) => tf.Scalar): TrainableModel {
  let training = true;
  let calls = 0;
  return {
    trainableParameters: () => model.trainableParameters(),
    train: () => {
      training = true;
      model.train();
    },
    eval: () => {
      training = false;
      model.eval();
    },
    loss: (batch) => {
      const loss = model.loss(batch);
      if (!training) return loss;
      calls += 1;
      return tf.tidy(() => corrupt(calls, loss));
    },
  };
}

/** Per-step losses, the log history and the final weights of a run. */
async function run(options: ToyTrainingOptions) {
  const stepLosses: number[] = [];
  const result = await runToyTraining({
    ...options,
    onStep: async (progress) => {
      stepLosses.push(progress.loss);
      await options.onStep?.(progress);
    },
  });
  return { ...result, stepLosses };
}

describeWithBackends(
  'trainLoop',
  () => {
    let outputDir = '';
    beforeEach(async () => {
      outputDir = await mkdtemp(join(tmpdir(), 'peft-ts-train-'));
    });
    afterEach(() => rm(outputDir, { recursive: true, force: true }));

    it('trains with accumulation, clipping and evaluation, keeps the tensor count flat, and logs everything', async () => {
      const counts: number[] = [];
      const logged: unknown[] = [];
      const result = await run({
        outputDir,
        settings: { maxSteps: 16, evalSteps: 5, saveSteps: 5, saveTotalLimit: 2, loggingSteps: 2 },
        onStep: () => void counts.push(tf.memory().numTensors),
        onLog: (record) => void logged.push(record),
      });
      // Optimizer state appears at step 1; from then on nothing may accumulate, evaluation steps included.
      expect(new Set(counts.slice(1)).size).toBe(1);
      expect(result.stepLosses).toHaveLength(16);
      const first = result.stepLosses.slice(0, 3).reduce((a, b) => a + b) / 3;
      const last = result.stepLosses.slice(-3).reduce((a, b) => a + b) / 3;
      expect(last).toBeLessThan(first * 0.8);

      const { summary, logHistory, metrics } = result;
      expect(summary).toMatchObject({ status: 'completed', globalStep: 16, maxSteps: 16 });
      expect(summary.lastCheckpoint).toBe(join(outputDir, 'checkpoint-16'));
      expect(losses(logHistory).map(([step]) => step)).toEqual([2, 4, 6, 8, 10, 12, 14, 16]);
      // The logged loss is the mean over the steps since the previous log.
      expect(losses(logHistory)[0][1]).toBeCloseTo((result.stepLosses[0] + result.stepLosses[1]) / 2, 12);
      // Every eval_steps, and once more at the end.
      expect(evalLosses(logHistory).map(([step]) => step)).toEqual([5, 10, 15, 16]);
      expect(logHistory.at(-1)).toMatchObject({ step: 16, total_flos: 0 });
      expect(logHistory.at(-1)!.train_loss).toBeCloseTo(result.stepLosses.reduce((a, b) => a + b) / 16, 12);
      expect(metrics).toEqual(logged);
      expect(metrics.map((record) => record.step)).toEqual([2, 4, 5, 6, 8, 10, 12, 14, 15, 16]);
      const atTen = metrics.find((record) => record.step === 10)!;
      expect(Object.keys(atTen).sort()).toEqual(
        ['epoch', 'eval_loss', 'eval_perplexity', 'grad_norm', 'learning_rate', 'loss', 'step', 'tokens_per_second'].sort(),
      );
      expect(atTen.eval_perplexity).toBeCloseTo(Math.exp(atTen.eval_loss!), 10);
      // 18 examples in batches of 4 → 5 micro-batches, 3 steps per epoch (the third takes one micro-batch), so
      // step 10 is the first step of epoch 3, two micro-batches of 4 into it.
      expect(atTen.epoch).toBeCloseTo(3 + 8 / 18, 12);
      expect(summary.bestEvalLoss).toBe(Math.min(...evalLosses(logHistory).map(([, loss]) => loss as number)));

      expect((await readdir(outputDir)).sort()).toEqual(['checkpoint-15', 'checkpoint-16', 'metrics.jsonl']);
      const saved = await CheckpointManager.load(join(outputDir, 'checkpoint-16'));
      tf.dispose([...saved.optimizerState.values()]);
      expect(saved.trainerState).toMatchObject({ global_step: 16, max_steps: 16, data_cursor: { epoch: 5, position: 8 } });
      expect(saved.trainerState.log_history).toEqual(logHistory.slice(0, -1));
      expect(saved.trainerState.best_metric).toBe(summary.bestEvalLoss);
    });

    it('trains for num_train_epochs when max_steps is -1', async () => {
      const result = await run({ outputDir, settings: { numTrainEpochs: 2, saveSteps: 100 } });
      expect(result.summary).toMatchObject({ globalStep: 6, maxSteps: 6, epoch: 2 });
      expect(await CheckpointManager.latest(outputDir)).toBe(join(outputDir, 'checkpoint-6'));
    });

    it('a run stopped by its abort signal and resumed gives the uninterrupted run’s losses bit for bit', async () => {
      const settings = { maxSteps: 12, saveSteps: 4, evalSteps: 3, loggingSteps: 2 };
      const straight = await run({ outputDir: join(outputDir, 'straight'), settings });

      const controller = new AbortController();
      const interrupted = await run({
        outputDir: join(outputDir, 'resumed'),
        settings,
        signal: controller.signal,
        onStep: ({ step }) => {
          if (step === 5) controller.abort();
        },
      });
      expect(interrupted.summary).toMatchObject({ status: 'interrupted', globalStep: 5 });
      // The step in progress finished and was saved, mid logging interval (steps 5 and 6 make one logged loss).
      expect(interrupted.summary.lastCheckpoint).toBe(join(outputDir, 'resumed', 'checkpoint-5'));
      const resumed = await run({ outputDir: join(outputDir, 'resumed'), settings, resumeFrom: 'latest' });

      expect([...interrupted.stepLosses, ...resumed.stepLosses]).toEqual(straight.stepLosses);
      expect(losses(resumed.logHistory)).toEqual(losses(straight.logHistory));
      expect(evalLosses(resumed.logHistory)).toEqual(evalLosses(straight.logHistory));
      expect(resumed.logHistory.at(-1)!.train_loss).toBe(straight.logHistory.at(-1)!.train_loss);
      for (const [name, values] of straight.weights) expect(resumed.weights.get(name)).toEqual(values);
      const withoutTiming = (records: typeof straight.metrics) =>
        records.map(({ tokens_per_second: _, ...record }) => record);
      expect(withoutTiming(resumed.metrics)).toEqual(withoutTiming(straight.metrics));
      // The divergence checks and the best checkpoint carry on from the checkpoint as if never interrupted.
      const finalState = async (directory: string) => {
        const saved = await CheckpointManager.load(join(directory, 'checkpoint-12'));
        tf.dispose([...saved.optimizerState.values()]);
        return saved.trainerState;
      };
      const [straightState, resumedState] = [await finalState(join(outputDir, 'straight')), await finalState(join(outputDir, 'resumed'))];
      expect(resumedState.divergence).toEqual(straightState.divergence);
      expect(resumedState.best_metric).toBe(straightState.best_metric);
    });

    it('refuses to resume into a different run, or with nothing to resume from', async () => {
      await run({ outputDir, settings: { maxSteps: 2, saveSteps: 2 } });
      await expect(run({ outputDir, settings: { maxSteps: 4, seed: 8 }, resumeFrom: 'latest' })).rejects.toThrow(
        `${join(outputDir, 'checkpoint-2', 'trainer_state.json')}: seed is 7 but this run has 8; resuming would not continue the same run`,
      );
      const empty = join(outputDir, 'empty');
      await expect(run({ outputDir: empty, settings: { maxSteps: 2 }, resumeFrom: 'latest' })).rejects.toThrow(TrainingError);
    });

    it('stops on a non-finite loss without applying or saving it; the last good checkpoint stays intact', async () => {
      const error = await run({
        outputDir,
        settings: { maxSteps: 12, saveSteps: 5, evalSteps: 100, gradientAccumulationSteps: 1 },
        // Step 7's forward pass (the 7th in training mode) yields NaN.
        wrapModel: (model) => corruptTrainingLoss(model, (call, loss) => (call === 7 ? tf.mul(loss, NaN) : loss)),
      }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NonFiniteLossError);
      const checkpoint = join(outputDir, 'checkpoint-5');
      expect((error as Error).message).toMatch(
        new RegExp(
          `^step 7: training loss is NaN \\(micro-batch 1 of 1\\); training stopped without applying this step\\. The best checkpoint is ${checkpoint} \\(eval loss \\d+\\.\\d{4}\\)$`,
        ),
      );
      expect(error).toMatchObject({ step: 7, lastCheckpoint: checkpoint, bestCheckpoint: checkpoint });
      expect((await readdir(outputDir)).sort()).toEqual(['checkpoint-5', 'metrics.jsonl']);
      const saved = await CheckpointManager.load(checkpoint);
      tf.dispose([...saved.optimizerState.values()]);
      expect(saved.trainerState.global_step).toBe(5);
      expect((await MetricsLog.read(join(outputDir, 'metrics.jsonl'))).map((record) => record.step)).toEqual([1, 2, 3, 4, 5, 6]);
      // The good checkpoint resumes to the same end as a run that never failed.
      const straight = await run({ outputDir: join(outputDir, 'straight'), settings: { maxSteps: 12, saveSteps: 5, gradientAccumulationSteps: 1 } });
      const resumed = await run({ outputDir, settings: { maxSteps: 12, saveSteps: 5, gradientAccumulationSteps: 1 }, resumeFrom: checkpoint });
      expect(resumed.stepLosses).toEqual(straight.stepLosses.slice(5));
    });

    it('stops a run whose loss blows up (learning_rate 1e6), before applying the step, naming the checkpoint to go back to', async () => {
      const error = await run({ outputDir, settings: { learningRate: 1e6, maxSteps: 30, saveSteps: 2 } }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TrainingDivergedError);
      const checkpoint = join(outputDir, 'checkpoint-2');
      expect((error as Error).message).toMatch(
        new RegExp(
          '^step 3: the smoothed training loss \\d+\\.\\d{4} is above 3 × its lowest value 2\\.\\d{4} \\(divergence_factor\\) and above ' +
            `the first step's 2\\.\\d{4}: the run diverged; training stopped without applying this step\\. The best checkpoint is ${checkpoint} ` +
            '\\(eval loss \\d+\\.\\d{4}\\)\\. Lower learning_rate \\(now 1000000\\), or raise divergence_factor \\(--divergence-factor\\); 0 turns the check off$',
        ),
      );
      expect(error).toMatchObject({ step: 3, lastCheckpoint: checkpoint, bestCheckpoint: checkpoint });
      expect((await MetricsLog.read(join(outputDir, 'metrics.jsonl'))).map((record) => record.step)).toEqual([1, 2]);
    });

    it('stops after zero_grad_norm_steps steps with a zero gradient norm (0 turns the check off)', async () => {
      // From step 5 on the loss is stuck above where it was, with no gradient: what a collapsed run looks like.
      const collapsed = (model: ToyLanguageModel) =>
        corruptTrainingLoss(model, (call, loss) => (call >= 5 ? tf.add(tf.mul(loss, 0), 3.5) : loss));
      const settings = { maxSteps: 12, saveSteps: 2, gradientAccumulationSteps: 1 };
      const error = await run({ outputDir, settings, wrapModel: collapsed }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(TrainingDivergedError);
      expect((error as Error).message).toMatch(
        new RegExp(
          "^step 7: the gradient norm has vanished \\(0\\.00e\\+0, under 1e-5 × the first step's \\d\\.\\d{4}\\) for 3 consecutive steps " +
            'while the smoothed loss \\d\\.\\d{4} stayed above its lowest \\d\\.\\d{4} \\(zero_grad_norm_steps\\): nothing is being learned; training ' +
            `stopped without applying this step\\. The best checkpoint is ${join(outputDir, 'checkpoint-\\d')} \\(eval loss \\d\\.\\d{4}\\)` +
            `(; the last is ${join(outputDir, 'checkpoint-6')})?\\. Lower learning_rate \\(now 0\\.05\\), or raise zero_grad_norm_steps ` +
            '\\(--zero-grad-norm-steps\\); 0 turns the check off$',
        ),
      );
      const off = await run({ outputDir: join(outputDir, 'off'), settings: { ...settings, zeroGradNormSteps: 0 }, wrapModel: collapsed });
      expect(off.summary).toMatchObject({ status: 'completed', globalStep: 12 });
    });

    it('keeps the best checkpoint (by eval loss) through save_total_limit and records it in trainer_state.json', async () => {
      // At learning_rate 1 the toy's eval loss is lowest at step 2 and worse at the later checkpoints.
      const result = await run({ outputDir, settings: { learningRate: 1, maxSteps: 8, saveSteps: 2, evalSteps: 100, saveTotalLimit: 1 } });
      const evaluations = evalLosses(result.logHistory) as [number, number][];
      // Every checkpoint is evaluated, eval_steps or not.
      expect(evaluations.map(([step]) => step)).toEqual([2, 4, 6, 8]);
      const [bestStep, bestLoss] = evaluations.reduce((best, entry) => (entry[1] < best[1] ? entry : best));
      expect(bestStep).toBe(2);
      const best = join(outputDir, 'checkpoint-2');
      expect(result.summary).toMatchObject({ status: 'completed', bestCheckpoint: best, lastCheckpoint: join(outputDir, 'checkpoint-8') });
      expect((await CheckpointManager.list(outputDir)).map((entry) => entry.step)).toEqual([2, 8]);
      const saved = await CheckpointManager.load(join(outputDir, 'checkpoint-8'));
      tf.dispose([...saved.optimizerState.values()]);
      expect(saved.trainerState).toMatchObject({ best_model_checkpoint: best, best_metric: bestLoss });
    });

    it('without a validation set, the best checkpoint is the one with the lowest smoothed training loss', async () => {
      const result = await run({ outputDir, settings: { maxSteps: 6, saveSteps: 2, saveTotalLimit: 1 }, validation: [] });
      const saved = await CheckpointManager.load(join(outputDir, 'checkpoint-6'));
      tf.dispose([...saved.optimizerState.values()]);
      // The loss falls here, so the newest checkpoint is the best, by the monitor's smoothed loss at that step.
      const { loss_average, steps } = saved.trainerState.divergence!;
      expect(saved.trainerState).toMatchObject({ best_model_checkpoint: join(outputDir, 'checkpoint-6'), best_metric: loss_average / (1 - 0.9 ** steps) });
      expect(result.summary.bestCheckpoint).toBe(join(outputDir, 'checkpoint-6'));
    });

    it('reports the checkpoint it resumes from and the settings changed since it was saved', async () => {
      await run({ outputDir, settings: { maxSteps: 2, saveSteps: 2 } });
      const resumes: ResumeInfo[] = [];
      const onResume = (resume: ResumeInfo) => void resumes.push(resume);
      await run({ outputDir, settings: { maxSteps: 3, saveSteps: 2, learningRate: 0.1, lora: { r: 4 } }, resumeFrom: 'latest', onResume });
      await run({ outputDir, settings: { maxSteps: 3, saveSteps: 2, learningRate: 0.1, lora: { r: 4 } }, resumeFrom: 'latest', onResume });
      const checkpoint2 = join(outputDir, 'checkpoint-2');
      await rm(join(checkpoint2, 'training_config.json'));
      await run({ outputDir, settings: { maxSteps: 3, saveSteps: 2 }, resumeFrom: checkpoint2, onResume });
      expect(resumes).toEqual([
        { directory: checkpoint2, step: 2, configChanges: ['learning_rate 0.05 → 0.1', 'lora.r 8 → 4', 'max_steps 2 → 3'] },
        { directory: join(outputDir, 'checkpoint-3'), step: 3, configChanges: [] },
        { directory: checkpoint2, step: 2, configChanges: null },
      ]);
    });

    it('resumes after the process is killed with SIGKILL mid-run, ending where an uninterrupted run ends', async () => {
      const settings = { maxSteps: 40, saveSteps: 6, evalSteps: 4 };
      const script = fileURLToPath(new URL('./testing/toy-training-process.ts', import.meta.url));
      const appRoot = fileURLToPath(new URL('../../', import.meta.url));
      const child = spawn(process.execPath, ['--import', 'tsx', script, outputDir, '40', '6', '40'], {
        cwd: appRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let errors = '';
      child.stderr.on('data', (chunk) => (errors += chunk));
      const killedAt = await new Promise<number>((resolve, reject) => {
        let output = '';
        child.stdout.on('data', (chunk) => {
          output += chunk;
          const steps = [...output.matchAll(/step (\d+)\n/g)].map((match) => Number(match[1]));
          // Past two checkpoints, and well before the end.
          if (steps.length && steps.at(-1)! >= 15 && child.kill('SIGKILL')) resolve(steps.at(-1)!);
        });
        child.on('exit', (code, signalName) => {
          if (signalName !== 'SIGKILL') reject(new Error(`the training process exited with ${code}: ${errors}`));
        });
      });
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
      expect(killedAt).toBeLessThan(40);
      const latest = await CheckpointManager.latest(outputDir);
      const latestStep = Number(latest!.split('-').at(-1));
      expect(latestStep).toBeGreaterThanOrEqual(12);
      expect(latestStep % 6).toBe(0);

      const resumed = await run({ outputDir, settings, resumeFrom: 'latest' });
      const straight = await run({ outputDir: join(outputDir, 'straight'), settings });
      expect(resumed.summary.globalStep).toBe(40);
      expect(resumed.stepLosses).toEqual(straight.stepLosses.slice(latestStep));
      expect(resumed.logHistory.at(-1)!.train_loss).toBe(straight.logHistory.at(-1)!.train_loss);
      expect(losses(resumed.logHistory)).toEqual(losses(straight.logHistory));
      // metrics.jsonl was cut back to the checkpoint and continued, so it lists every step once.
      expect((await MetricsLog.read(join(outputDir, 'metrics.jsonl'))).map((record) => record.step)).toEqual(
        Array.from({ length: 40 }, (_, index) => index + 1),
      );
      expect(JSON.parse(await readFile(join(outputDir, 'checkpoint-40', 'trainer_state.json'), 'utf8')).global_step).toBe(40);
    });
  },
  ['cpu'],
);
