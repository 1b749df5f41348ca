import { createLoraMethod } from '@peft-ts/lora';
import { doraConv2dVariant, doraLinearVariant } from './dora-variant.js';

/** LoRA with DoRA available: adapters whose config sets `use_dora` get the DoRA variant. */
export const doraMethod = createLoraMethod({ doraVariants: { linear: doraLinearVariant, conv2d: doraConv2dVariant } });
