import { loadCausalLm, readConfigFile, type LoadCheckpointOptions } from '@peft-ts/model-common';
import { join } from 'node:path';
import { MistralConfigError, parseMistralConfig, type MistralConfig } from './mistral-config.js';
import { MistralForCausalLM, mistralDecoderConfig } from './mistral-model.js';

export type LoadMistralOptions = LoadCheckpointOptions & {
  /** Replaces config.json fields before the model is built (e.g. `{ sliding_window: null }`). */
  readonly configOverrides?: Partial<MistralConfig>;
};

/** Reads and validates `<directory>/config.json`. */
export async function readMistralConfig(directory: string): Promise<MistralConfig> {
  return readConfigFile(directory, parseMistralConfig, { what: 'Mistral', notFound: (message) => new MistralConfigError(message) });
}

/**
 * Loads a transformers `MistralForCausalLM` checkpoint directory (see `loadCausalLm` for the formats, half and
 * pre-quantized checkpoints, and the checks).
 */
export async function loadMistral(directory: string, options: LoadMistralOptions = {}): Promise<MistralForCausalLM> {
  const fileConfig = await readMistralConfig(directory);
  const config = options.configOverrides
    ? parseMistralConfig({ ...fileConfig, ...options.configOverrides }, { source: join(directory, 'config.json') })
    : fileConfig;
  return loadCausalLm(directory, mistralDecoderConfig(config), () => new MistralForCausalLM(config, { meta: true }), options);
}
