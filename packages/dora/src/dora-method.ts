import type { QuantizationRoundTrip } from '@peft-ts/core';
import { createLoraMethod } from '@peft-ts/lora';
import { doraConv2dVariant, doraLinearVariant } from './dora-variant.js';

/** LoRA with DoRA available: adapters whose config sets `use_dora` get the DoRA variant; a quantizer enables LoftQ. */
export function createDoraMethod(options: { loftqQuantizer?: QuantizationRoundTrip } = {}) {
  return createLoraMethod({ ...options, doraVariants: { linear: doraLinearVariant, conv2d: doraConv2dVariant } });
}

/** LoRA with DoRA available (no LoftQ). */
export const doraMethod = createDoraMethod();
