import { createLoraMethod } from '@peft-ts/lora';
import { loftqQuantizer } from '@peft-ts/quant';
// Registers DoRA with LoRA, so `use_dora: true` in a config needs nothing more here.
import '@peft-ts/dora';

/** What the CLI injects and loads adapters with: LoRA (DoRA as registered) and LoftQ initialisation with PEFT's quantizer. */
export const adapterMethod = createLoraMethod({ loftqQuantizer });
