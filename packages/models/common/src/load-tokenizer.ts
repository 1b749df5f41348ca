import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HfTokenizer, TokenizerError } from './hf-tokenizer.js';

/**
 * Loads `<directory>/tokenizer.json` (required) and `tokenizer_config.json` (optional: special tokens, add_bos_token,
 * chat_template).
 */
export async function loadTokenizer(directory: string): Promise<HfTokenizer> {
  const tokenizerPath = join(directory, 'tokenizer.json');
  const tokenizer = await readJsonObject(tokenizerPath, true);
  const config = await readJsonObject(join(directory, 'tokenizer_config.json'), false);
  return new HfTokenizer({ tokenizer: tokenizer!, config: config ?? {}, source: tokenizerPath });
}

async function readJsonObject(path: string, required: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (!required) return null;
    throw new TokenizerError(`${path}: not found (only fast tokenizers, saved as tokenizer.json, are supported)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TokenizerError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenizerError(`${path}: expected a JSON object`);
  return value as Record<string, unknown>;
}
