import { decoderLinearWeightCount, type CausalLmFamily } from '@peft-ts/model-common';
import { parseMistralConfig, type MistralConfig } from './mistral-config.js';
import { loadMistral } from './load-mistral.js';
import { MistralForCausalLM, mistralDecoderConfig } from './mistral-model.js';
import { mistral7bV01Config } from './mistral-presets.js';
import { saveMistral } from './save-mistral.js';

/** Mistral for applications that pick the family by config.json's `model_type`. */
export const mistralFamily: CausalLmFamily<MistralConfig, MistralForCausalLM> = {
  modelType: 'mistral',
  architectures: ['MistralForCausalLM'],
  presets: { 'mistral-7b-v0.1': mistral7bV01Config },
  parseConfig: (input, options) => parseMistralConfig(input, options),
  decoderConfig: mistralDecoderConfig,
  create: (config, options) => new MistralForCausalLM(config, options),
  load: (directory, options) => loadMistral(directory, options),
  save: (model, directory, options) => saveMistral(model, directory, options),
  linearWeightCount: (config) => decoderLinearWeightCount(mistralDecoderConfig(config)),
};
