import { createDoraMethod } from '@peft-ts/dora';
import { loftqQuantizer } from '@peft-ts/quant';

/** What the CLI injects and loads adapters with: LoRA, DoRA, and LoftQ initialisation with PEFT's quantizer. */
export const adapterMethod = createDoraMethod({ loftqQuantizer });
