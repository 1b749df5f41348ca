import { decoderLinearWeightCount, type CausalLmFamily } from '@peft-ts/model-common';
import { parseLlamaConfig, type LlamaConfig } from './llama-config.js';
import { LlamaForCausalLM, llamaDecoderConfig } from './llama-model.js';
import { llama2_7bConfig } from './llama-presets.js';
import { loadLlama } from './load-llama.js';
import { saveLlama } from './save-llama.js';

/** Llama for applications that pick the family by config.json's `model_type`. */
export const llamaFamily: CausalLmFamily<LlamaConfig, LlamaForCausalLM> = {
  modelType: 'llama',
  architectures: ['LlamaForCausalLM'],
  presets: { 'llama-2-7b': llama2_7bConfig },
  parseConfig: (input, options) => parseLlamaConfig(input, options),
  decoderConfig: llamaDecoderConfig,
  create: (config, options) => new LlamaForCausalLM(config, options),
  load: (directory, options) => loadLlama(directory, options),
  save: (model, directory, options) => saveLlama(model, directory, options),
  linearWeightCount: (config) => decoderLinearWeightCount(llamaDecoderConfig(config)),
};
