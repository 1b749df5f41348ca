import { randomCausalLm, type RandomCausalLmOptions } from '@peft-ts/model-common';
import type { LlamaConfig, LlamaConfigInput } from './llama-config.js';
import { LlamaForCausalLM } from './llama-model.js';

/**
 * A randomly initialised model (as `new LlamaForCausalLM(config)` initialises it) built tensor by tensor the way
 * `loadLlama` builds one from a checkpoint (see `randomCausalLm`: quantizing `createLinear`, half storage).
 */
export function randomLlama(config: LlamaConfigInput | LlamaConfig, options: RandomCausalLmOptions = {}): LlamaForCausalLM {
  return randomCausalLm(new LlamaForCausalLM(config, { meta: true }), options);
}
