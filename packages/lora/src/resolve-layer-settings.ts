import { type QuantizationRoundTrip } from '@peft-ts/core';
import { matchFromStart } from '@peft-ts/core/internal';
import type { LoraConfig } from '@peft-ts/config';
import type { LoraAdapterSettings } from './lora-layer.js';

/**
 * PEFT 0.10's rank/alpha pattern lookup for the module at `key`: the first key of rank_pattern,
 * then alpha_pattern, that matches `.*\.<pattern>$` from the start of the key (Python's `re.match`, so in
 * `q_proj|v_proj` the second alternative must match the whole key) is used for BOTH lookups (so a matching
 * rank key hides a different alpha key: PEFT's behaviour, which its adapter files depend on);
 * with no match the full key itself is looked up.
 */
export function resolvePatternKey(key: string, config: Pick<LoraConfig, 'rankPattern' | 'alphaPattern'>): string {
  const patternKeys = [...Object.keys(config.rankPattern ?? {}), ...Object.keys(config.alphaPattern ?? {})];
  return patternKeys.find((pattern) => matchFromStart(`.*\\.${pattern}$`, key) !== null) ?? key;
}

export function resolveLayerSettings(key: string, config: LoraConfig, loftqQuantizer?: QuantizationRoundTrip): LoraAdapterSettings {
  const patternKey = resolvePatternKey(key, config);
  // PEFT 0.10 drops loftq_config on its way to the layer (always 4 bits, 1 iteration); later PEFT passes it, as here.
  const loftq =
    config.initLoraWeights === 'loftq' && loftqQuantizer
      ? { bits: config.loftqConfig?.loftqBits ?? 4, iterations: config.loftqConfig?.loftqIter ?? 1, quantizer: loftqQuantizer }
      : undefined;
  return {
    r: config.rankPattern?.[patternKey] ?? config.r,
    alpha: config.alphaPattern?.[patternKey] ?? config.loraAlpha,
    dropout: config.loraDropout,
    initLoraWeights: config.initLoraWeights,
    useRslora: config.useRslora,
    useDora: config.useDora,
    ...(loftq && { loftq }),
  };
}
