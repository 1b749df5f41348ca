import { saveCausalLm, type SaveCheckpointOptions } from '@peft-ts/model-common';
import type { LlamaForCausalLM } from './llama-model.js';

/** Writes a Llama checkpoint in transformers' layout (see `saveCausalLm`). */
export async function saveLlama(model: LlamaForCausalLM, directory: string, options: SaveCheckpointOptions = {}): Promise<string[]> {
  return saveCausalLm(model, directory, options);
}
