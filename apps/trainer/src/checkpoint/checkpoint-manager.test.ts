import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createTrainingConfig, serializeTrainingConfig } from '@peft-ts/config';
import { describeWithBackends } from '@peft-ts/core/test';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { CheckpointError } from './checkpoint-error.js';
import { CheckpointManager } from './checkpoint-manager.js';
import type { TrainerState } from './trainer-state.js';

function trainerState(step: number): TrainerState {
  return {
    best_metric: null,
    best_model_checkpoint: null,
    epoch: step / 4,
    eval_steps: 2,
    global_step: step,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: [{ step, epoch: step / 4, loss: 1 / 3, learning_rate: 2e-4, grad_norm: null }],
    logging_steps: 1,
    max_steps: 10,
    num_input_tokens_seen: 128 * step,
    num_train_epochs: 3,
    save_steps: 1,
    total_flos: 0,
    train_batch_size: 2,
    trial_name: null,
    trial_params: null,
    data_cursor: { epoch: 0, position: 2 * step },
    seed: 42,
    gradient_accumulation_steps: 1,
    train_examples: 8,
    loss_since_last_log: { sum: 0.1 + 0.2, steps: 2 },
    total_loss: Math.PI,
  };
}

const adapterWriter = (marker: string) => async (directory: string) => {
  await writeFile(join(directory, 'adapter_config.json'), marker);
};

describeWithBackends(
  'CheckpointManager',
  () => {
    let outputDir = '';
    let optimizerState: Map<string, tf.Tensor>;
    beforeEach(async () => {
      outputDir = await mkdtemp(join(tmpdir(), 'peft-ts-checkpoints-'));
      optimizerState = new Map<string, tf.Tensor>([
        ['w.exp_avg', tf.tensor1d([0.5, -1.25])],
        ['w.exp_avg_sq', tf.tensor1d([1e-7, 3])],
        ['w.step', tf.scalar(3)],
      ]);
    });
    afterEach(async () => {
      tf.dispose([...optimizerState.values()]);
      await rm(outputDir, { recursive: true, force: true });
    });
    const save = (manager: CheckpointManager, step: number, marker = `adapter ${step}`) =>
      manager.save({ trainerState: trainerState(step), optimizerState, writeAdapter: adapterWriter(marker) });

    it('writes checkpoint-<step> with the adapter, optimizer state and trainer state, and reads it back exactly', async () => {
      const manager = new CheckpointManager(outputDir);
      const directory = await save(manager, 5);
      expect(directory).toBe(join(outputDir, 'checkpoint-5'));
      expect((await readdir(directory)).sort()).toEqual(['adapter_config.json', 'optimizer.safetensors', 'trainer_state.json']);
      expect(await readdir(outputDir)).toEqual(['checkpoint-5']);
      const loaded = await CheckpointManager.load(directory);
      expect(loaded.trainerState).toEqual(trainerState(5));
      expect([...loaded.optimizerState.keys()].sort()).toEqual([...optimizerState.keys()].sort());
      for (const [name, tensor] of optimizerState) {
        expect(Array.from(loaded.optimizerState.get(name)!.dataSync())).toEqual(Array.from(tensor.dataSync()));
      }
      tf.dispose([...loaded.optimizerState.values()]);
    });

    it('ignores what a crash leaves behind, and the next save clears it', async () => {
      const manager = new CheckpointManager(outputDir);
      await save(manager, 2);
      // A save killed before its rename: a temporary directory with some of the files.
      const interrupted = join(outputDir, 'tmp-checkpoint-4-0d6f');
      await mkdir(interrupted);
      await writeFile(join(interrupted, 'adapter_config.json'), 'partial');
      // A checkpoint-named directory without trainer_state.json (not written by a completed save).
      await mkdir(join(outputDir, 'checkpoint-6'));
      await writeFile(join(outputDir, 'checkpoint-6', 'optimizer.safetensors'), '');
      expect(await CheckpointManager.latest(outputDir)).toBe(join(outputDir, 'checkpoint-2'));
      await save(manager, 3);
      expect((await readdir(outputDir)).sort()).toEqual(['checkpoint-2', 'checkpoint-3', 'checkpoint-6']);
      expect(await CheckpointManager.latest(outputDir)).toBe(join(outputDir, 'checkpoint-3'));
      expect(await CheckpointManager.latest(join(outputDir, 'nothing-here'))).toBeNull();
    });

    it('leaves no checkpoint and no temporary directory when writing fails', async () => {
      const manager = new CheckpointManager(outputDir);
      const failing = manager.save({
        trainerState: trainerState(4),
        optimizerState,
        writeAdapter: async () => {
          throw new Error('disk full');
        },
      });
      await expect(failing).rejects.toThrow(CheckpointError);
      await expect(failing).rejects.toThrow(`${join(outputDir, 'checkpoint-4')}: checkpoint could not be written (disk full)`);
      expect(await readdir(outputDir)).toEqual([]);
    });

    it('keeps only the newest save_total_limit checkpoints, and replaces a checkpoint of the same step', async () => {
      const manager = new CheckpointManager(outputDir, { saveTotalLimit: 2 });
      for (const step of [1, 2, 3, 10]) await save(manager, step);
      expect((await CheckpointManager.list(outputDir)).map((entry) => entry.step)).toEqual([3, 10]);
      expect((await readdir(outputDir)).sort()).toEqual(['checkpoint-10', 'checkpoint-3']);
      await save(manager, 10, 'second save of step 10');
      expect(await readFile(join(outputDir, 'checkpoint-10', 'adapter_config.json'), 'utf8')).toBe('second save of step 10');
      expect((await readdir(outputDir)).sort()).toEqual(['checkpoint-10', 'checkpoint-3']);
    });

    it('never rotates away the best checkpoint; with a limit of 1 it keeps the best and the newest', async () => {
      const saveWithBest = (manager: CheckpointManager, step: number, best: number) =>
        manager.save({
          trainerState: { ...trainerState(step), best_model_checkpoint: join(outputDir, `checkpoint-${best}`), best_metric: 0.5 },
          optimizerState,
          writeAdapter: adapterWriter(`adapter ${step}`),
        });
      const steps = async () => (await CheckpointManager.list(outputDir)).map((entry) => entry.step);
      const manager = new CheckpointManager(outputDir, { saveTotalLimit: 2 });
      for (const step of [1, 2, 3, 4]) await saveWithBest(manager, step, Math.min(step, 2));
      expect(await steps()).toEqual([2, 4]);
      const single = new CheckpointManager(outputDir, { saveTotalLimit: 1 });
      await saveWithBest(single, 5, 2);
      expect(await steps()).toEqual([2, 5]);
      await saveWithBest(single, 6, 6);
      expect(await steps()).toEqual([6]);
    });

    it('saves the training config with the checkpoint and reads it back; an older checkpoint without one reads as null', async () => {
      const trainingConfig = createTrainingConfig({ model: 'm', data: 'd.jsonl', outputDir, learningRate: 1e-4 });
      const directory = await new CheckpointManager(outputDir).save({
        trainerState: trainerState(3),
        optimizerState,
        writeAdapter: adapterWriter('adapter'),
        trainingConfig,
      });
      const loaded = await CheckpointManager.load(directory);
      tf.dispose([...loaded.optimizerState.values()]);
      expect(loaded.trainingConfig).toEqual(JSON.parse(serializeTrainingConfig(trainingConfig)));
      expect(loaded.trainingConfig).toMatchObject({ learning_rate: 1e-4, output_dir: outputDir });
      await rm(join(directory, 'training_config.json'));
      const older = await CheckpointManager.load(directory);
      tf.dispose([...older.optimizerState.values()]);
      expect(older.trainingConfig).toBeNull();
    });

    it('reports a damaged trainer_state.json with the file and field', async () => {
      const directory = await save(new CheckpointManager(outputDir), 1);
      const statePath = join(directory, 'trainer_state.json');
      const state = JSON.parse(await readFile(statePath, 'utf8'));
      await writeFile(statePath, JSON.stringify({ ...state, data_cursor: { epoch: 0 } }));
      await expect(CheckpointManager.load(directory)).rejects.toThrow(new RegExp(`^${statePath}: data_cursor\\.position: `));
      await writeFile(statePath, '{"global_step": ');
      await expect(CheckpointManager.load(directory)).rejects.toThrow(`${statePath}: invalid JSON (`);
    });
  },
  ['cpu'],
);
