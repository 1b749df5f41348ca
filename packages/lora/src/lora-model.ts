import {
  MergeError,
  PeftError,
  TunerModel,
  isDecoderModel,
  type AdapterMethod,
  type AdapterTargetModel,
  type DecoderModel,
  type Module,
  type TunerModelOptions,
} from '@peft-ts/core';
import { brandClass } from '@peft-ts/core/internal';
import type { LoraConfig } from '@peft-ts/config';
import { replicateLayers } from '@peft-ts/replication';
import { appliedReplication, unshareLayerParameters } from '@peft-ts/replication/internal';
import { LoraLayer } from './lora-layer.js';
import { loraMethod } from './lora-method.js';
import { addWeightedAdapter, type CombinationType, type WeightedAdapterOptions } from './weighted-adapter.js';

/** The prefix PEFT puts before every module path in adapter files (`PeftModel.base_model.model`). */
export const PEFT_KEY_PREFIX = 'base_model.model.';

export type LoraModelOptions = TunerModelOptions & {
  /** The method to inject with (default `loraMethod`, which takes DoRA from @peft-ts/dora once it is imported). */
  method?: AdapterMethod<LoraConfig>;
};

/**
 * A model with LoRA adapters injected in place (PEFT's PeftModel + LoraModel). The adapter lifecycle is
 * TunerModel's; LoRA adds layer replication, bias training, and combining adapters.
 */
export class LoraModel<MODEL extends AdapterTargetModel = AdapterTargetModel> extends TunerModel<LoraConfig, LoraLayer, MODEL> {
  static {
    brandClass(this, '@peft-ts/lora:LoraModel');
  }

  constructor(model: MODEL, config: LoraConfig, options: LoraModelOptions = {}) {
    super(model, options.method ?? loraMethod, config, options);
  }

  /** Every LoRA layer with its dotted path. */
  loraLayers(): [string, LoraLayer][] {
    return this.adapterLayers();
  }

  /** A new adapter combining others (PEFT `add_weighted_adapter`); see `addWeightedAdapter`. */
  addWeightedAdapter(
    adapters: readonly string[],
    weights: readonly number[],
    adapterName: string,
    combinationType?: CombinationType,
    options?: WeightedAdapterOptions,
  ): Promise<void> {
    return addWeightedAdapter(this, adapters, weights, adapterName, combinationType, options);
  }

  protected isAdapterLayer(module: Module): module is LoraLayer {
    return module instanceof LoraLayer;
  }

  protected override prepareInjection(adapterName: string, config: LoraConfig): void {
    if (this.adapterNames.length > 0 && config.bias !== 'none') {
      throw new PeftError(
        `bias: only one adapter may train biases; set bias to 'none' for every adapter when using several (adapter '${adapterName}' has '${config.bias}')`,
      );
    }
    // An empty list replicates nothing, as in PEFT (where it is falsy).
    if (config.layerReplication?.length) {
      if (!isDecoderModel(this.model)) {
        throw new PeftError('layer_replication: the model does not expose its decoder layers (DecoderModel)');
      }
      // Before injection, so every replica gets its own adapter over the shared base weights.
      replicateLayers(this.model, config.layerReplication);
    }
  }

  protected override checkMergeInPlace(): void {
    if (this.isReplicated()) {
      throw new MergeError(
        'cannot merge in place: replicated layers share base weights (layer_replication); use mergeAndUnload(), which gives each layer its own merged copy',
      );
    }
  }

  /** Replicas share base tensors; each position needs its own before its own ΔW goes in. */
  protected override prepareMergeAndUnload(): void {
    if (this.isReplicated()) unshareLayerParameters(this.model as unknown as DecoderModel);
  }

  /** Only one adapter may train biases (prepareInjection refuses a second), so at most one of these acts. */
  protected override markMoreTrainable(trainingAdapters: readonly string[]): void {
    for (const adapterName of trainingAdapters) {
      const { bias } = this.config(adapterName);
      if (bias === 'all') {
        for (const [name, parameter] of this.model.namedParameters({ includeShared: true })) {
          if (name.includes('bias')) parameter.requiresGrad = true;
        }
      } else if (bias === 'lora_only') {
        for (const [, layer] of this.loraLayers()) {
          if (layer.baseLayer.hasParameter('bias')) layer.baseLayer.parameter('bias').requiresGrad = true;
        }
      }
    }
  }

  private isReplicated(): boolean {
    return isDecoderModel(this.model) && appliedReplication(this.model) !== undefined;
  }
}
