import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkOutputDirectory, OutputDirectoryError, removePreviousRun, type OutputDirectoryCheck } from './output-directory.js';

describe('checkOutputDirectory', () => {
  let scratch = '';
  let model = '';
  let data = '';
  beforeEach(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-output-dir-'));
    model = join(scratch, 'model');
    data = join(scratch, 'data', 'train.jsonl');
    await mkdir(model);
    await mkdir(join(scratch, 'data'));
    await writeFile(data, '{"text": "a"}\n');
  });
  afterEach(async () => {
    await chmod(scratch, 0o700).catch(() => {});
    await rm(scratch, { recursive: true, force: true });
  });
  const check = (outputDir: string, options: Partial<OutputDirectoryCheck> = {}) =>
    checkOutputDirectory({
      outputDir,
      resume: false,
      overwrite: false,
      inputs: [
        { path: model, what: 'base model directory (model)' },
        { path: data, what: 'training data (data)' },
      ],
      ...options,
    });
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => expect.fail('expected an OutputDirectoryError'),
      (error: unknown) => {
        expect(error).toBeInstanceOf(OutputDirectoryError);
        return (error as Error).message;
      },
    );
  /** What a finished run leaves, plus a file of the user's. */
  const previousRun = async (directory: string) => {
    await mkdir(join(directory, 'checkpoint-2'), { recursive: true });
    await writeFile(join(directory, 'checkpoint-2', 'trainer_state.json'), '{}');
    await mkdir(join(directory, 'tmp-checkpoint-4-3f2a'));
    for (const file of ['adapter_config.json', 'adapter_model.safetensors', 'metrics.jsonl', 'trainer_state.json', 'report.html', 'loss.svg']) {
      await writeFile(join(directory, file), '');
    }
    await writeFile(join(directory, '.metrics.jsonl.0b7e.tmp'), '');
    await writeFile(join(directory, 'notes.txt'), 'mine');
  };

  it('creates a missing directory (and its parents) and accepts an empty one', async () => {
    const output = join(scratch, 'runs', 'first');
    expect(await check(output)).toEqual({ runEntries: [], otherEntries: [] });
    expect(await readdir(output)).toEqual([]);
    expect(await check(output)).toEqual({ runEntries: [], otherEntries: [] });
  });

  it('refuses a directory that is, or contains, the model or the data, even with overwrite_output_dir', async () => {
    expect(await failure(check(scratch, { overwrite: true }))).toBe(
      `output_dir ${scratch} contains the base model directory (model) ${model}; the trainer writes its checkpoints and adapter there ` +
        'and clears them for a new run, so choose an --output-dir (output_dir) outside the model and the data',
    );
    expect(await failure(check(model, { resume: true }))).toMatch(new RegExp(`^output_dir ${model} is the base model directory \\(model\\) `));
    expect(await failure(check(join(scratch, 'data')))).toMatch(/ contains the training data \(data\) .*train\.jsonl; /);
    // The same directory through a symbolic link, and `.`-style relative spellings.
    await symlink(join(scratch, 'data'), join(scratch, 'linked'));
    expect(await failure(check(join(scratch, 'linked')))).toMatch(/ contains the training data \(data\) /);
    expect(await failure(check(join(scratch, 'model', '..', 'data', '.')))).toMatch(/ contains the training data \(data\) /);
    // A sibling whose name merely starts with the model's is fine.
    expect(await check(join(scratch, 'model-run'))).toEqual({ runEntries: [], otherEntries: [] });
  });

  it('refuses a non-empty directory that holds no training run, unless overwrite_output_dir', async () => {
    const output = join(scratch, 'elsewhere');
    await mkdir(output);
    await writeFile(join(output, 'model.safetensors'), '');
    await writeFile(join(output, 'adapter_config.json'), '{}');
    expect(await failure(check(output))).toBe(
      `output_dir ${output} is not empty and holds no training run (adapter_config.json, model.safetensors); choose a new or empty --output-dir, ` +
        'or pass --overwrite-output-dir (overwrite_output_dir: true) to train there anyway: only the files a run writes are replaced, others are kept',
    );
    expect(await check(output, { overwrite: true })).toEqual({ runEntries: ['adapter_config.json'], otherEntries: ['model.safetensors'] });
  });

  it('refuses a previous run without --resume or overwrite_output_dir; overwriting removes only what the run wrote', async () => {
    const output = join(scratch, 'run');
    await previousRun(output);
    expect(await failure(check(output))).toBe(
      `output_dir ${output} holds a previous training run (.metrics.jsonl.0b7e.tmp, adapter_config.json, adapter_model.safetensors, checkpoint-2, loss.svg, metrics.jsonl and 3 more); ` +
        "pass --resume to continue it, or --overwrite-output-dir (overwrite_output_dir: true) to start over, which removes that run's checkpoints, adapter, metrics and report",
    );
    expect((await check(output, { resume: true })).otherEntries).toEqual(['notes.txt']);
    const contents = await check(output, { overwrite: true });
    expect(contents.otherEntries).toEqual(['notes.txt']);
    expect(await removePreviousRun(output)).toEqual(contents.runEntries);
    expect(await readdir(output)).toEqual(['notes.txt']);
  });

  it('says when the directory is a file, or a part of its path is', async () => {
    const outside = join(scratch, 'plain-file');
    await writeFile(outside, '');
    expect(await failure(check(outside))).toBe(`output_dir ${outside} is a file, not a directory; choose a directory for --output-dir (output_dir)`);
    const under = join(outside, 'run', 'one');
    expect(await failure(check(under))).toBe(
      `output_dir ${under} cannot be created: ${outside} is a file, not a directory; choose another --output-dir (output_dir)`,
    );
  });

  // Root may write anywhere, so the permission cannot be taken away there.
  it.skipIf(process.getuid?.() === 0)('says when the directory is not writable', async () => {
    const output = join(scratch, 'read-only');
    await mkdir(output);
    await chmod(output, 0o500);
    expect(await failure(check(output))).toBe(
      `output_dir ${output} is not writable (permission denied); choose another --output-dir (output_dir) or fix its permissions`,
    );
    await chmod(output, 0o700);
  });
});
