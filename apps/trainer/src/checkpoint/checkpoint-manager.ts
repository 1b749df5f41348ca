import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { serializeTrainingConfig, type TrainingConfig } from '@peft-ts/config';
import { readTensorFile, writeTensorFile } from '@peft-ts/core';
import { writeTextFileAtomically } from '@peft-ts/core/internal';
import { CheckpointError } from './checkpoint-error.js';
import { parseTrainerState, serializeTrainerState, type TrainerState } from './trainer-state.js';

export const OPTIMIZER_FILE_NAME = 'optimizer.safetensors';
export const TRAINER_STATE_FILE_NAME = 'trainer_state.json';
/** The run's resolved training config (snake_case keys), so a resume can say which settings changed. */
export const TRAINING_CONFIG_FILE_NAME = 'training_config.json';

const checkpointName = /^checkpoint-(\d+)$/;
/** Prefix of directories being written or deleted; never mistaken for a checkpoint. */
const temporaryPrefix = 'tmp-checkpoint-';

/** Whether an output directory entry is a checkpoint, or a checkpoint being written or deleted. */
export function isCheckpointEntryName(name: string): boolean {
  return checkpointName.test(name) || name.startsWith(temporaryPrefix);
}

export type CheckpointContents = {
  readonly trainerState: TrainerState;
  /** Stays owned by the caller. */
  readonly optimizerState: ReadonlyMap<string, tf.Tensor>;
  /** Writes the model's (adapter's) files into the directory. */
  readonly writeAdapter: (directory: string) => Promise<void>;
  readonly trainingConfig?: TrainingConfig;
};

export type LoadedCheckpoint = {
  readonly directory: string;
  readonly trainerState: TrainerState;
  /** Owned by the caller, who disposes them. */
  readonly optimizerState: Map<string, tf.Tensor>;
  /** training_config.json as saved (snake_case keys); null for a checkpoint written before it was saved. */
  readonly trainingConfig: Record<string, unknown> | null;
};

export type CheckpointEntry = { readonly step: number; readonly directory: string };

/**
 * `checkpoint-<step>/` directories under an output directory, as transformers' Trainer lays them out. A checkpoint
 * is written in a temporary sibling, every file synced, and renamed into place only when complete, so a crash at
 * any point leaves either no `checkpoint-<step>` or a complete one; leftovers are removed by the next save.
 */
export class CheckpointManager {
  constructor(
    readonly outputDir: string,
    private readonly options: { saveTotalLimit?: number | null } = {},
  ) {}

  /** Complete checkpoints in `outputDir`, oldest first. */
  static async list(outputDir: string): Promise<CheckpointEntry[]> {
    const names = await readdir(outputDir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw new CheckpointError(`${outputDir}: cannot be read (${error.message})`);
    });
    const entries: CheckpointEntry[] = [];
    for (const name of names) {
      const match = checkpointName.exec(name);
      if (!match) continue;
      const directory = join(outputDir, name);
      // trainer_state.json is written last, so a directory without it was not made by a completed save.
      const complete = await stat(join(directory, TRAINER_STATE_FILE_NAME)).then((file) => file.isFile(), () => false);
      if (complete) entries.push({ step: Number(match[1]), directory });
    }
    return entries.sort((a, b) => a.step - b.step);
  }

  /** The newest complete checkpoint directory in `outputDir`, or null when there is none. */
  static async latest(outputDir: string): Promise<string | null> {
    return (await CheckpointManager.list(outputDir)).at(-1)?.directory ?? null;
  }

  static async load(directory: string): Promise<LoadedCheckpoint> {
    const statePath = join(directory, TRAINER_STATE_FILE_NAME);
    const text = await readFile(statePath, 'utf8').catch((error: Error) => {
      throw new CheckpointError(`${statePath}: cannot be read (${error.message})`);
    });
    const trainerState = parseTrainerState(text, statePath);
    const trainingConfig = await readTrainingConfig(join(directory, TRAINING_CONFIG_FILE_NAME));
    const optimizerPath = join(directory, OPTIMIZER_FILE_NAME);
    const optimizerState = await readTensorFile(optimizerPath).catch((error: Error) => {
      throw new CheckpointError(`${optimizerPath}: cannot be read (${error.message})`);
    });
    return { directory, trainerState, optimizerState, trainingConfig };
  }

  /**
   * Writes `checkpoint-<global_step>` (replacing one of that step), then deletes the oldest beyond the limit, except
   * the trainer state's `best_model_checkpoint`, which is kept as transformers keeps it (one more than the limit
   * when the limit is 1 and the best is not the newest).
   */
  async save(contents: CheckpointContents): Promise<string> {
    const step = contents.trainerState.global_step;
    await mkdir(this.outputDir, { recursive: true });
    await this.removeTemporaryDirectories();
    const target = join(this.outputDir, `checkpoint-${step}`);
    const temporary = join(this.outputDir, `${temporaryPrefix}${step}-${randomUUID()}`);
    await mkdir(temporary);
    try {
      await contents.writeAdapter(temporary);
      await writeTensorFile(join(temporary, OPTIMIZER_FILE_NAME), contents.optimizerState);
      if (contents.trainingConfig) {
        await writeTextFileAtomically(join(temporary, TRAINING_CONFIG_FILE_NAME), serializeTrainingConfig(contents.trainingConfig));
      }
      // The adapter writer may not sync its files; everything must be on disk before the rename publishes it.
      await syncTree(temporary);
      await writeTextFileAtomically(join(temporary, TRAINER_STATE_FILE_NAME), serializeTrainerState(contents.trainerState));
      await syncPath(temporary);
      await this.discard(target);
      await rename(temporary, target);
      await syncPath(this.outputDir);
    } catch (error) {
      await rm(temporary, { recursive: true, force: true });
      if (error instanceof CheckpointError) throw error;
      throw new CheckpointError(`${target}: checkpoint could not be written (${(error as Error).message})`);
    }
    await this.rotate(contents.trainerState.best_model_checkpoint);
    return target;
  }

  private async rotate(best: string | null): Promise<void> {
    const limit = this.options.saveTotalLimit;
    if (limit == null) return;
    const newestFirst = (await CheckpointManager.list(this.outputDir)).map(({ directory }) => directory).reverse();
    const kept = new Set(newestFirst.slice(0, 1));
    const bestEntry = best === null ? undefined : newestFirst.find((directory) => resolve(directory) === resolve(best));
    if (bestEntry) kept.add(bestEntry);
    for (const directory of newestFirst) if (kept.size < limit) kept.add(directory);
    for (const directory of newestFirst) if (!kept.has(directory)) await this.discard(directory);
  }

  /** Renames a directory out of the checkpoint namespace before deleting it, so a half-deleted one is never seen. */
  private async discard(directory: string): Promise<void> {
    const doomed = join(this.outputDir, `${temporaryPrefix}deleted-${randomUUID()}`);
    try {
      await rename(directory, doomed);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  private async removeTemporaryDirectories(): Promise<void> {
    for (const name of await readdir(this.outputDir)) {
      if (name.startsWith(temporaryPrefix)) await rm(join(this.outputDir, name), { recursive: true, force: true });
    }
  }
}

async function readTrainingConfig(path: string): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CheckpointError(`${path}: cannot be read (${(error as Error).message})`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
    throw new Error('expected an object of config keys');
  } catch (error) {
    throw new CheckpointError(`${path}: invalid JSON (${(error as Error).message})`);
  }
}

async function syncTree(directory: string): Promise<void> {
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) await syncPath(path);
  }
  await syncPath(directory);
}

async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some platforms cannot fsync a directory; the file data itself has been synced by then.
    if (!['EISDIR', 'EINVAL', 'EPERM'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    await handle.close();
  }
}
