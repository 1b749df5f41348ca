import { loadCausalLm, readConfigFile, type LoadCheckpointOptions } from '@peft-ts/model-common';
import { join } from 'node:path';
import { LlamaConfigError, parseLlamaConfig, type LlamaConfig } from './llama-config.js';
import { LlamaForCausalLM, llamaDecoderConfig } from './llama-model.js';

export type LoadLlamaOptions = LoadCheckpointOptions & {
  /** Replaces config.json fields before the model is built (e.g. `{ rope_scaling: { type: 'dynamic', factor: 2 } }`). */
  readonly configOverrides?: Partial<LlamaConfig>;
};

/** Reads and validates `<directory>/config.json`. */
export async function readLlamaConfig(directory: string): Promise<LlamaConfig> {
  return readConfigFile(directory, parseLlamaConfig, { what: 'Llama', notFound: (message) => new LlamaConfigError(message) });
}

/**
 * Loads a transformers `LlamaForCausalLM` checkpoint directory (see `loadCausalLm` for the formats, half and
 * pre-quantized checkpoints, and the checks).
 */
export async function loadLlama(directory: string, options: LoadLlamaOptions = {}): Promise<LlamaForCausalLM> {
  const fileConfig = await readLlamaConfig(directory);
  const config = options.configOverrides
    ? parseLlamaConfig({ ...fileConfig, ...options.configOverrides }, { source: join(directory, 'config.json') })
    : fileConfig;
  return loadCausalLm(directory, llamaDecoderConfig(config), () => new LlamaForCausalLM(config, { meta: true }), options);
}
