import { Conv2d, Embedding, PeftError, isLinearLike, type AdapterDispatcher, type AdapterMethod, type QuantizationRoundTrip } from '@peft-ts/core';
import type { LoraConfig } from '@peft-ts/config';
import { LoraConv2d } from './lora-conv2d.js';
import { LoraEmbedding } from './lora-embedding.js';
import { LoraLayer, type LoraVariant } from './lora-layer.js';
import { LoraLinear } from './lora-linear.js';
import { resolveLayerSettings } from './resolve-layer-settings.js';

/** Variants by layer kind for `use_dora: true` (supplied by @peft-ts/dora). */
export type DoraVariants = { readonly linear?: LoraVariant; readonly conv2d?: LoraVariant };

function variantFor(kind: keyof DoraVariants, useDora: boolean, key: string, variants: DoraVariants): LoraVariant | undefined {
  if (!useDora) return undefined;
  const variant = variants[kind];
  if (!variant) {
    throw new PeftError(
      `${key}: use_dora is set but no DoRA variant for ${kind} layers is registered (use doraMethod from @peft-ts/dora)`,
    );
  }
  return variant;
}

/**
 * The LoRA method: dispatchers for an existing LoRA layer (adds another adapter), any linear-like
 * layer (float or quantized, through WeightAccess), Embedding and Conv2d, tried in that order.
 */
export function createLoraMethod(
  options: {
    type?: string;
    doraVariants?: DoraVariants;
    /** Enables `init_lora_weights: "loftq"` (`loftqQuantizer` from @peft-ts/quant). */
    loftqQuantizer?: QuantizationRoundTrip;
  } = {},
): AdapterMethod<LoraConfig> {
  const variants = options.doraVariants ?? {};
  const resolveSettings = (key: string, config: LoraConfig) => resolveLayerSettings(key, config, options.loftqQuantizer);
  const existingLayer: AdapterDispatcher<LoraConfig> = {
    supports: 'LoRA layers (another adapter)',
    create: ({ target, key, adapterName, config }) => {
      if (!(target instanceof LoraLayer)) return undefined;
      const settings = resolveSettings(key, config);
      const kind = target instanceof LoraConv2d ? 'conv2d' : 'linear';
      if (settings.useDora && target instanceof LoraEmbedding) throw embeddingDoraError(key);
      target.addAdapter(adapterName, settings, variantFor(kind, settings.useDora, key, variants));
      return target;
    },
  };
  const linearLayer: AdapterDispatcher<LoraConfig> = {
    supports: 'Linear (float, 8-bit, 4-bit)',
    create: ({ target, key, adapterName, config }) => {
      if (!isLinearLike(target)) return undefined;
      const settings = resolveSettings(key, config);
      const layer = new LoraLinear(target);
      layer.addAdapter(adapterName, settings, variantFor('linear', settings.useDora, key, variants));
      return layer;
    },
  };
  const embeddingLayer: AdapterDispatcher<LoraConfig> = {
    supports: 'Embedding',
    create: ({ target, key, adapterName, config }) => {
      if (!(target instanceof Embedding)) return undefined;
      const settings = resolveSettings(key, config);
      if (settings.useDora) throw embeddingDoraError(key);
      const layer = new LoraEmbedding(target);
      layer.addAdapter(adapterName, settings);
      return layer;
    },
  };
  const convLayer: AdapterDispatcher<LoraConfig> = {
    supports: 'Conv2d',
    create: ({ target, key, adapterName, config }) => {
      if (!(target instanceof Conv2d)) return undefined;
      const settings = resolveSettings(key, config);
      const layer = new LoraConv2d(target);
      layer.addAdapter(adapterName, settings, variantFor('conv2d', settings.useDora, key, variants));
      return layer;
    },
  };
  return {
    type: options.type ?? 'lora',
    parameterPrefix: 'lora_',
    dispatchers: [existingLayer, linearLayer, embeddingLayer, convLayer],
  };
}

function embeddingDoraError(key: string): PeftError {
  return new PeftError(`${key}: Embedding does not support DoRA yet, please set use_dora to false`);
}

/** Plain LoRA (DoRA configs are refused with a pointer to @peft-ts/dora). */
export const loraMethod: AdapterMethod<LoraConfig> = createLoraMethod();
