import type { QuantizationRoundTrip } from '@peft-ts/core';
import { createLoraMethod, registerLoraVariant, type LoraVariantsByKind } from '@peft-ts/lora';
import { doraConv2dVariant, doraLinearVariant } from './dora-variant.js';

const doraVariants: LoraVariantsByKind = { linear: doraLinearVariant, conv2d: doraConv2dVariant };

// Importing this package is what makes `useDora: true` work with LoRA's default method (package.json lists this
// file under sideEffects, so bundlers keep it).
registerLoraVariant('dora', doraVariants);

/** LoRA with DoRA available: adapters whose config sets `use_dora` get the DoRA variant; a quantizer enables LoftQ. */
export function createDoraMethod(options: { loftqQuantizer?: QuantizationRoundTrip } = {}) {
  return createLoraMethod({ ...options, doraVariants });
}

/** LoRA with DoRA available (no LoftQ); `loraMethod` is the same once this package is loaded. */
export const doraMethod = createDoraMethod();
