import { randomCausalLm, type RandomCausalLmOptions } from '@peft-ts/model-common';
import type { MistralConfig, MistralConfigInput } from './mistral-config.js';
import { MistralForCausalLM } from './mistral-model.js';

export type RandomMistralOptions = RandomCausalLmOptions;

/**
 * A randomly initialised model (as `new MistralForCausalLM(config)` initialises it) built tensor by tensor the way
 * `loadMistral` builds one from a checkpoint (see `randomCausalLm`: quantizing `createLinear`, half storage).
 */
export function randomMistral(config: MistralConfigInput | MistralConfig, options: RandomMistralOptions = {}): MistralForCausalLM {
  return randomCausalLm(new MistralForCausalLM(config, { meta: true }), options);
}
