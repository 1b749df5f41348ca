import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeftError } from '@peft-ts/core';
import type { CausalLmFamily, FamilyConfig } from '@peft-ts/model-common';
import { mistralFamily } from '@peft-ts/model-mistral';

/**
 * The model families the trainer can run, by config.json's `model_type`. Adding one: its package, an entry here
 * and a dependency line in apps/trainer/package.json.
 */
export const modelFamilies: readonly CausalLmFamily[] = [mistralFamily];

/** A config.json whose `model_type` names no family the trainer knows (or is missing). */
export class ModelTypeError extends PeftError {}

const supported = () => modelFamilies.map((family) => `'${family.modelType}'`).join(', ');

/** The family for a `model_type` value read from `source`. */
export function familyForModelType(modelType: unknown, source: string): CausalLmFamily {
  if (modelType === undefined) throw new ModelTypeError(`${source}: has no model_type (supported: ${supported()})`);
  const family = modelFamilies.find((candidate) => candidate.modelType === modelType);
  if (!family) throw new ModelTypeError(`${source}: model_type ${JSON.stringify(modelType)} is not supported (supported: ${supported()})`);
  return family;
}

/** A config.json's text, parsed by the family its `model_type` names. */
export function parseModelConfig(text: string, source: string): { family: CausalLmFamily; config: FamilyConfig } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelTypeError(`${source}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ModelTypeError(`${source}: expected a JSON object`);
  const family = familyForModelType((value as { model_type?: unknown }).model_type, source);
  return { family, config: family.parseConfig(value, { source }) };
}

/** `<directory>/config.json`'s `model_type`, checked against the known families. */
export async function readModelType(directory: string): Promise<string> {
  return (await readModelConfig(directory)).family.modelType;
}

/** `<directory>/config.json`, validated by its family. */
export async function readModelConfig(directory: string): Promise<{ family: CausalLmFamily; config: FamilyConfig }> {
  const path = join(directory, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new ModelTypeError(`${path}: not found (a Hugging Face model directory needs a config.json)`);
  }
  return parseModelConfig(text, path);
}

/** A preset config by name (`mistral-7b-v0.1`, …) across the families, or undefined. */
export function presetModelConfig(name: string): { family: CausalLmFamily; config: FamilyConfig } | undefined {
  for (const family of modelFamilies) {
    const preset = family.presets[name];
    if (preset) return { family, config: family.parseConfig(preset, { source: `preset ${name}` }) };
  }
  return undefined;
}

/** Every preset name, for help texts and errors. */
export function presetNames(): string[] {
  return modelFamilies.flatMap((family) => Object.keys(family.presets));
}
