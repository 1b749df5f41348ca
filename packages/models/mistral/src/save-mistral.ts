import { saveCausalLm, type SaveCheckpointOptions } from '@peft-ts/model-common';
import type { MistralForCausalLM } from './mistral-model.js';

export type SaveMistralOptions = SaveCheckpointOptions;

/** Writes a Mistral checkpoint in transformers' layout (see `saveCausalLm`). */
export async function saveMistral(model: MistralForCausalLM, directory: string, options: SaveMistralOptions = {}): Promise<string[]> {
  return saveCausalLm(model, directory, options);
}
