import { readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { PeftError } from '@peft-ts/core';

const reason = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

/** The path given to `option`, which must exist: a raw ENOENT from deep inside a loader would not say which option was wrong. */
export async function existingPath(option: string, path: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (error) {
    throw new PeftError(`${option} ${path}: ${reason(error) === 'ENOENT' ? 'does not exist' : `cannot be read (${reason(error)})`}`);
  }
}

/** The text of a file given to `option` as itself or as the directory holding `fileName`. */
export async function readOptionFile(option: string, path: string, fileName: string): Promise<{ text: string; source: string }> {
  const source = (await existingPath(option, path)).isDirectory() ? join(path, fileName) : path;
  try {
    return { text: await readFile(source, 'utf8'), source };
  } catch (error) {
    throw new PeftError(`${option} ${path}: ${reason(error) === 'ENOENT' ? `the directory holds no ${fileName}` : `cannot be read (${reason(error)})`}`);
  }
}
