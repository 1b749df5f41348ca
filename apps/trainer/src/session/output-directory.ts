import { randomUUID } from 'node:crypto';
import { mkdir, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { PeftError } from '@peft-ts/core';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '@peft-ts/lora';
import { isCheckpointEntryName, TRAINER_STATE_FILE_NAME } from '../checkpoint/checkpoint-manager.js';
import { LOSS_CHART_FILE_NAME, REPORT_FILE_NAME } from '../report/training-report.js';
import { METRICS_FILE_NAME } from '../training/train-loop.js';

/** The output directory cannot be used for this run: it holds other data, or cannot be written. */
export class OutputDirectoryError extends PeftError {}

/** The files `train` writes at the top of its output directory, besides the checkpoint directories. */
const runFileNames = [
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  METRICS_FILE_NAME,
  TRAINER_STATE_FILE_NAME,
  REPORT_FILE_NAME,
  LOSS_CHART_FILE_NAME,
];
/** What only a training run leaves: the other run files are also those of a plain PEFT adapter directory. */
const runMarkers = new Set([METRICS_FILE_NAME, TRAINER_STATE_FILE_NAME]);
const writeProbePrefix = '.peft-ts-write-check-';

/** Whether the trainer wrote this entry: a run file, a checkpoint, or what an interrupted atomic write or probe left. */
function isRunEntry(name: string): boolean {
  if (runFileNames.includes(name) || isCheckpointEntryName(name) || name.startsWith(writeProbePrefix)) return true;
  return runFileNames.some((file) => name.startsWith(`.${file}.`) && name.endsWith('.tmp'));
}

export type OutputDirectoryContents = {
  /** Entries a previous run wrote (removed when a new run starts there with overwrite_output_dir). */
  readonly runEntries: readonly string[];
  /** Everything else; never removed. */
  readonly otherEntries: readonly string[];
};

export type OutputDirectoryCheck = {
  readonly outputDir: string;
  /** Continue the run in the directory: nothing is refused or removed for what it holds. */
  readonly resume: boolean;
  readonly overwrite: boolean;
  /** The run's inputs, which the output directory may not hold: the model directory and the data files. */
  readonly inputs: readonly { readonly path: string; readonly what: string }[];
};

const listing = (names: readonly string[], limit = 6) =>
  names.length <= limit ? names.join(', ') : `${names.slice(0, limit).join(', ')} and ${names.length - limit} more`;

/**
 * Checks, before anything is loaded, that the run may use its output directory: it is not (and does not contain)
 * the model or the data, it can be created and written, and it holds nothing a new run would clobber unless
 * overwrite_output_dir says to replace a previous run's files. Creates the directory.
 */
export async function checkOutputDirectory(check: OutputDirectoryCheck): Promise<OutputDirectoryContents> {
  const { outputDir } = check;
  const output = await canonicalPath(outputDir);
  for (const input of check.inputs) {
    const inside = await canonicalPath(input.path);
    if (inside !== output && !inside.startsWith(output.endsWith(sep) ? output : `${output}${sep}`)) continue;
    const relation = inside === output ? 'is' : 'contains';
    throw new OutputDirectoryError(
      `output_dir ${outputDir} ${relation} the ${input.what} ${input.path}; the trainer writes its checkpoints and adapter there ` +
        'and clears them for a new run, so choose an --output-dir (output_dir) outside the model and the data',
    );
  }
  await createWritableDirectory(outputDir);
  const names = (await readdir(outputDir)).sort();
  const contents = {
    runEntries: names.filter(isRunEntry),
    otherEntries: names.filter((name) => !isRunEntry(name)),
  };
  if (check.resume || names.length === 0 || check.overwrite) return contents;
  if (contents.runEntries.some((name) => runMarkers.has(name) || isCheckpointEntryName(name))) {
    throw new OutputDirectoryError(
      `output_dir ${outputDir} holds a previous training run (${listing(contents.runEntries)}); pass --resume to continue it, ` +
        'or --overwrite-output-dir (overwrite_output_dir: true) to start over, which removes that run\'s checkpoints, adapter, metrics and report',
    );
  }
  throw new OutputDirectoryError(
    `output_dir ${outputDir} is not empty and holds no training run (${listing(names)}); choose a new or empty --output-dir, ` +
      'or pass --overwrite-output-dir (overwrite_output_dir: true) to train there anyway: only the files a run writes are replaced, others are kept',
  );
}

/** Removes what a previous run wrote into the output directory, keeping every other file; returns the entries removed. */
export async function removePreviousRun(outputDir: string): Promise<string[]> {
  const removed = (await readdir(outputDir)).filter(isRunEntry).sort();
  for (const name of removed) await rm(join(outputDir, name), { recursive: true, force: true });
  return removed;
}

/** Creates the directory and writes and removes a file in it, so a run fails before the model loads, not after. */
async function createWritableDirectory(directory: string): Promise<void> {
  const existing = await stat(directory).catch(() => null);
  if (existing && !existing.isDirectory()) {
    throw new OutputDirectoryError(`output_dir ${directory} is a file, not a directory; choose a directory for --output-dir (output_dir)`);
  }
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      const file = await firstFileAncestor(directory);
      throw new OutputDirectoryError(
        `output_dir ${directory} cannot be created: ${file ?? 'a part of the path'} is a file, not a directory; choose another --output-dir (output_dir)`,
      );
    }
    throw new OutputDirectoryError(`output_dir ${directory} cannot be created (${describeErrno(error)}); choose another --output-dir (output_dir)`);
  }
  const probe = join(directory, `${writeProbePrefix}${randomUUID()}`);
  try {
    await writeFile(probe, '');
  } catch (error) {
    throw new OutputDirectoryError(`output_dir ${directory} is not writable (${describeErrno(error)}); choose another --output-dir (output_dir) or fix its permissions`);
  } finally {
    await rm(probe, { force: true });
  }
}

async function firstFileAncestor(path: string): Promise<string | null> {
  for (let current = path; dirname(current) !== current; current = dirname(current)) {
    const entry = await stat(current).catch(() => null);
    if (entry) return entry.isDirectory() ? null : current;
  }
  return null;
}

function describeErrno(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
  };
  return (code && reasons[code]) ?? code ?? (error as Error).message;
}

/** The absolute path with symbolic links resolved as far as the path exists (so `.` and a link to it compare equal). */
async function canonicalPath(path: string): Promise<string> {
  try {
    return await realpath(resolve(path));
  } catch {
    const absolute = resolve(path);
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(await canonicalPath(parent), basename(absolute));
  }
}
