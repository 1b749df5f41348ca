import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PeftError } from '@peft-ts/core';
import { ConfigError, parseTrainingConfigObject, type TrainingConfig } from '@peft-ts/config';
import { loraOptionFlag } from '../commands/lora-options.js';

export class UsageError extends PeftError {}

/** Reads a YAML or JSON config file into a plain object, naming the file (and line) on failure. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${path}: cannot read the config file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let value: unknown;
  try {
    value = parseYaml(text, { prettyErrors: true });
  } catch (error) {
    throw new UsageError(`${path}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${path}: expected a mapping of config keys`);
  return value as Record<string, unknown>;
}

/** `learningRate` → `learning_rate` (CLI options are camelCase in commander, files are snake_case). */
const toSnakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/**
 * The training config: the file's keys, overridden by the command-line options given (relative
 * paths in a file resolve against the file's directory, on the command line against the cwd). `--data` replaces
 * only the training file of a `data: {train, validation}` mapping; LoRA keys replace those of the file's `lora`.
 */
export async function resolveTrainingConfig(options: {
  config?: string;
  overrides: Record<string, unknown>;
  /** snake_case keys of the `lora` section. */
  loraOverrides?: Record<string, unknown>;
}): Promise<TrainingConfig> {
  const base = options.config ? await readConfigFile(options.config) : {};
  if (options.config) {
    const directory = dirname(resolve(options.config));
    const relativeTo = (path: unknown) => (typeof path === 'string' && !isAbsolute(path) ? resolve(directory, path) : path);
    for (const key of ['model', 'output_dir']) if (key in base) base[key] = relativeTo(base[key]);
    if (typeof base.data === 'string') base.data = relativeTo(base.data);
    else if (base.data && typeof base.data === 'object') {
      const data = base.data as Record<string, unknown>;
      base.data = { ...data, train: relativeTo(data.train), ...(data.validation ? { validation: relativeTo(data.validation) } : {}) };
    }
  }
  const merged: Record<string, unknown> = { ...base };
  for (const [name, value] of Object.entries(options.overrides)) {
    if (value === undefined) continue;
    const key = toSnakeCase(name);
    merged[key] = ['model', 'output_dir', 'data'].includes(key) && typeof value === 'string' ? resolve(value) : value;
  }
  // `--data FILE` names the training file; a validation file the config names stays (the CLI has no option for it).
  const validation = (base.data as { validation?: unknown } | undefined)?.validation;
  if (typeof options.overrides.data === 'string' && validation !== undefined) merged.data = { train: merged.data, validation };
  const loraOverrides = Object.entries(options.loraOverrides ?? {}).filter(([, value]) => value !== undefined);
  if (loraOverrides.length > 0) {
    const fileLora = base.lora && typeof base.lora === 'object' && !Array.isArray(base.lora) ? base.lora : {};
    merged.lora = { ...fileLora, ...Object.fromEntries(loraOverrides) };
  }
  // The config path of each value given on the command line, with the option it came from.
  const fromCommandLine = new Map([
    ...Object.keys(options.overrides)
      .filter((name) => options.overrides[name] !== undefined)
      .map((name): [string, string] => [toSnakeCase(name), `--${toSnakeCase(name).replaceAll('_', '-')}`]),
    ...loraOverrides.map(([key]): [string, string] => [`lora.${key}`, loraOptionFlag(key)]),
  ]);
  try {
    return parseTrainingConfigObject(merged);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(blameConfigIssues(error, fromCommandLine, options.config));
    throw error;
  }
}

/**
 * One line per issue, each naming where the value came from: the command-line option (`--learning-rate`) for keys
 * given there, else the config file and key, so a bad flag is never reported as an error in a file that lacks it.
 */
function blameConfigIssues(error: ConfigError, fromCommandLine: ReadonlyMap<string, string>, configFile: string | undefined): string {
  return error.issues
    .map(({ path, message }) => {
      const given = [...fromCommandLine.keys()].find((key) => path === key || path.startsWith(`${key}.`) || path.startsWith(`${key}[`));
      if (given !== undefined) return `${fromCommandLine.get(given)}${path.slice(given.length)}: ${message}`;
      return [configFile ?? 'command line', path, message].filter(Boolean).join(': ');
    })
    .join('\n');
}
