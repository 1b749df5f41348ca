import {
  MergeError,
  isDecoderModel,
  PeftError,
  UnknownAdapterError,
  countParameters,
  injectAdapter,
  type AdapterMethod,
  type AdapterTargetModel,
  type DecoderModel,
  type Module,
  type Parameter,
  type ParameterCount,
} from '@peft-ts/core';
import type { LoraConfig } from '@peft-ts/config';
import { appliedReplication, replicateLayers, unshareLayerParameters } from '@peft-ts/replication';
import { LoraLayer } from './lora-layer.js';
import { loraMethod } from './lora-method.js';
import { ModulesToSaveWrapper } from './modules-to-save-wrapper.js';
import { addWeightedAdapter, type CombinationType, type WeightedAdapterOptions } from './weighted-adapter.js';

/** The prefix PEFT puts before every module path in adapter files (`PeftModel.base_model.model`). */
export const PEFT_KEY_PREFIX = 'base_model.model.';

export type LoraModelOptions = {
  adapterName?: string;
  /** The method to inject with; `doraMethod` from @peft-ts/dora adds DoRA support. */
  method?: AdapterMethod<LoraConfig>;
  /** Where PEFT's warnings go (default `console.warn`): e.g. switching adapters on a merged model unmerges it. */
  onWarning?: (message: string) => void;
};

/**
 * A model with LoRA adapters injected in place (PEFT's PeftModel + LoraModel): add, activate,
 * disable, delete, merge and unload adapters, and list what trains.
 */
export class LoraModel<MODEL extends AdapterTargetModel = AdapterTargetModel> {
  readonly model: MODEL;
  readonly method: AdapterMethod<LoraConfig>;
  private readonly configs = new Map<string, LoraConfig>();
  private readonly warn: (message: string) => void;
  private activeNames: string[] = [];

  constructor(model: MODEL, config: LoraConfig, options: LoraModelOptions = {}) {
    this.model = model;
    this.method = options.method ?? loraMethod;
    this.warn = options.onWarning ?? console.warn;
    const adapterName = options.adapterName ?? 'default';
    this.inject(adapterName, config);
    this.activate([adapterName]);
  }

  /** The active adapter; an error while several are active (see `activeAdapters`). '' once every adapter is deleted. */
  get activeAdapter(): string {
    if (this.activeNames.length > 1) {
      throw new PeftError(`several adapters are active (${this.activeNames.join(', ')}); read activeAdapters or name one`);
    }
    return this.activeNames[0] ?? '';
  }

  /** The adapters whose contributions are summed in the forward pass (PEFT `active_adapters`). */
  get activeAdapters(): readonly string[] {
    return this.activeNames;
  }

  get adapterNames(): string[] {
    return [...this.configs.keys()];
  }

  config(adapterName = this.activeAdapter): LoraConfig {
    const config = this.configs.get(adapterName);
    if (!config) throw this.unknownAdapter(adapterName);
    return config;
  }

  /** Every LoRA layer with its dotted path. */
  loraLayers(): [string, LoraLayer][] {
    return this.model.namedModules().filter((entry): entry is [string, LoraLayer] => entry[1] instanceof LoraLayer);
  }

  /** Every modules_to_save wrapper with its dotted path. */
  modulesToSaveWrappers(): [string, ModulesToSaveWrapper][] {
    return this.model
      .namedModules()
      .filter((entry): entry is [string, ModulesToSaveWrapper] => entry[1] instanceof ModulesToSaveWrapper);
  }

  /**
   * Injects another adapter, inactive (PEFT `add_adapter`); the active ones stay active. On a merged model the
   * merged layers stay merged, as in PEFT.
   */
  addAdapter(adapterName: string, config: LoraConfig): void {
    if (this.configs.has(adapterName)) throw new PeftError(`adapter '${adapterName}' already exists`);
    this.inject(adapterName, config);
    this.activate(this.activeNames);
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

  /**
   * Activates one adapter or several (PEFT `set_adapter`): the outputs of several are summed, and each one's
   * parameters train unless it was loaded for inference. A merged model is unmerged first, with PEFT's warning.
   * With modules_to_save, only one adapter can be active, as in PEFT.
   */
  async setAdapter(adapterNames: string | readonly string[]): Promise<void> {
    const names = [...new Set(typeof adapterNames === 'string' ? [adapterNames] : adapterNames)];
    if (names.length === 0) throw new PeftError('setAdapter: expected at least one adapter name');
    for (const name of names) if (!this.configs.has(name)) throw this.unknownAdapter(name);
    if (names.length > 1 && this.modulesToSaveWrappers().length > 0) {
      throw new PeftError(`Only one adapter can be set at a time for modules_to_save (got ${names.join(', ')})`);
    }
    if (this.loraLayers().some(([, layer]) => layer.isMerged)) {
      this.warn('Adapter cannot be set when the model is merged. Unmerging the model first.');
      await this.unmergeAdapter();
    }
    this.activate(names);
  }

  /**
   * Removes an adapter (PEFT `delete_adapter`). If it was active, the other active ones stay, else the
   * alphabetically first remaining adapter becomes active. Deleting a merged adapter is refused: PEFT would
   * leave its ΔW in the base weights and fail to unmerge afterwards.
   */
  deleteAdapter(adapterName: string): void {
    if (!this.configs.has(adapterName)) throw this.unknownAdapter(adapterName);
    const merged = new Set(this.loraLayers().flatMap(([, layer]) => layer.mergedAdapters));
    if (merged.has(adapterName)) {
      throw new MergeError(`cannot delete adapter '${adapterName}': it is merged into the base weights; await unmergeAdapter() first`);
    }
    for (const [, layer] of this.loraLayers()) {
      if (layer.adapterNames.includes(adapterName)) layer.deleteAdapter(adapterName);
    }
    for (const [, wrapper] of this.modulesToSaveWrappers()) wrapper.deleteAdapter(adapterName);
    this.configs.delete(adapterName);
    let remaining = this.activeNames.filter((name) => name !== adapterName);
    const next = this.adapterNames.sort()[0];
    if (remaining.length === 0 && this.activeNames.includes(adapterName) && next !== undefined) {
      this.warn(`Adapter ${adapterName} was active which is now deleted. Setting active adapter to ${next}.`);
      remaining = [next];
    }
    this.activate(remaining);
  }

  /** Runs `body` with every adapter off (PEFT `disable_adapter()`); merged layers are unmerged for good. */
  async withAdaptersDisabled<T>(body: () => T | Promise<T>): Promise<T> {
    await this.setAdaptersDisabled(true);
    try {
      return await body();
    } finally {
      await this.setAdaptersDisabled(false);
    }
  }

  /** Disabling unmerges merged layers for good, as PEFT does. */
  async setAdaptersDisabled(disabled: boolean): Promise<void> {
    if (disabled) await this.unmergeAdapter();
    for (const [, layer] of this.loraLayers()) layer.setAdaptersDisabled(disabled);
    for (const [, wrapper] of this.modulesToSaveWrappers()) wrapper.adaptersDisabled = disabled;
  }

  /** Merges adapters (default: the active ones, each of them) into the base weights in place (PEFT `merge_adapter`). */
  async mergeAdapter(options: { adapterNames?: readonly string[]; safeMerge?: boolean } = {}): Promise<void> {
    if (this.isReplicated()) {
      throw new MergeError(
        'cannot merge in place: replicated layers share base weights (layer_replication); use mergeAndUnload(), which gives each layer its own merged copy',
      );
    }
    for (const [, layer] of this.loraLayers()) await layer.merge({ adapterNames: options.adapterNames ?? this.activeNames, safeMerge: options.safeMerge });
  }

  async unmergeAdapter(): Promise<void> {
    for (const [, layer] of this.loraLayers()) await layer.unmerge();
  }

  /** Merges, then replaces every LoRA layer by its base layer; returns the plain model. */
  async mergeAndUnload(options: { adapterNames?: readonly string[]; safeMerge?: boolean } = {}): Promise<MODEL> {
    // Replicas share base tensors; each position needs its own before its own ΔW goes in.
    if (this.isReplicated()) unshareLayerParameters(this.model as unknown as DecoderModel);
    // Merge everywhere first so a safe-merge failure leaves the model wrapped and unchanged.
    const layers = this.loraLayers();
    const mergedSoFar: LoraLayer[] = [];
    try {
      for (const [, layer] of layers) {
        await layer.merge({ adapterNames: options.adapterNames ?? this.activeNames, safeMerge: options.safeMerge });
        mergedSoFar.push(layer);
      }
    } catch (error) {
      for (const layer of mergedSoFar) await layer.unmerge();
      throw error;
    }
    return this.unwrap(layers);
  }

  /**
   * Removes every LoRA layer without merging and returns the base model (PEFT `unload`). As in PEFT, layers merged
   * before keep their merged weights: `unmergeAdapter()` first to get the original weights back.
   */
  async unload(): Promise<MODEL> {
    return this.unwrap(this.loraLayers());
  }

  /** Trainable parameters by dotted path (shared tensors once). */
  trainableParameters(): [string, Parameter][] {
    return this.model.namedParameters().filter(([, parameter]) => parameter.requiresGrad) as [string, Parameter][];
  }

  countParameters(): ParameterCount {
    return countParameters(this.model);
  }

  protected inject(adapterName: string, config: LoraConfig): void {
    if (this.configs.size > 0 && config.bias !== 'none') {
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
    const saved = this.wrapModulesToSave(adapterName, config.modulesToSave ?? []);
    injectAdapter({ model: this.model, method: this.method, config, adapterName, skipKeys: saved });
    this.configs.set(adapterName, config);
  }

  /**
   * Wraps every module whose path ends with a `modules_to_save` name (plain suffix, as PEFT
   * matches) in a ModulesToSaveWrapper holding a trainable copy for this adapter.
   */
  private wrapModulesToSave(adapterName: string, names: readonly string[]): Set<string> {
    const wrapped = new Set<string>();
    if (names.length === 0) return wrapped;
    for (const [key, module] of this.model.namedModules()) {
      if (!key || !names.some((name) => key.endsWith(name)) || [...wrapped].some((done) => key.startsWith(`${done}.`))) continue;
      if (key.split('.').some((part) => part === 'original_module' || part === 'modules_to_save')) continue;
      const wrapper = module instanceof ModulesToSaveWrapper ? module : new ModulesToSaveWrapper(module);
      wrapper.addAdapter(adapterName);
      if (wrapper !== module) this.model.setSubmodule(key, wrapper);
      wrapped.add(key);
    }
    return wrapped;
  }

  /** Makes these adapters the active ones on every layer and wrapper, then marks what trains. */
  private activate(adapterNames: readonly string[]): void {
    for (const [, layer] of this.loraLayers()) layer.setActiveAdapters(adapterNames);
    // Several active adapters come with no modules_to_save (setAdapter refuses that), so one name decides here.
    const [single] = adapterNames;
    for (const [, wrapper] of this.modulesToSaveWrappers()) {
      wrapper.activeAdapter = single !== undefined && wrapper.copyFor(single) ? single : null;
    }
    this.activeNames = [...adapterNames];
    this.markTrainable();
  }

  /** PEFT `_mark_only_adapters_as_trainable` + the parameters of every active adapter not loaded for inference. */
  protected markTrainable(): void {
    const training = this.activeNames.filter((name) => this.configs.get(name)?.inferenceMode === false);
    for (const [name, parameter] of this.model.namedParameters({ includeShared: true })) {
      const parts = name.split('.');
      const adapterPart = parts.findIndex((part) => part.startsWith(this.method.parameterPrefix));
      const copyPart = parts.indexOf('modules_to_save');
      const segment = adapterPart >= 0 ? adapterPart : copyPart;
      parameter.requiresGrad = segment >= 0 && training.includes(parts[segment + 1]);
    }
    // Only one adapter may train biases (inject refuses a second), so at most one of these acts.
    for (const adapterName of training) this.markBiasesTrainable(this.configs.get(adapterName)!);
  }

  private markBiasesTrainable(config: LoraConfig): void {
    if (config.bias === 'none') return;
    if (config.bias === 'all') {
      for (const [name, parameter] of this.model.namedParameters({ includeShared: true })) {
        if (name.includes('bias')) parameter.requiresGrad = true;
      }
    } else {
      for (const [, layer] of this.loraLayers()) {
        if (layer.baseLayer.hasParameter('bias')) layer.baseLayer.parameter('bias').requiresGrad = true;
      }
    }
  }

  private isReplicated(): boolean {
    return isDecoderModel(this.model) && appliedReplication(this.model) !== undefined;
  }

  private unwrap(layers: [string, LoraLayer][]): MODEL {
    for (const [key, layer] of layers) {
      this.model.setSubmodule(key, layer.baseLayer);
      disposeAdapterWeights(layer);
    }
    // PEFT keeps the trained copy of each module to save.
    for (const [key, wrapper] of this.modulesToSaveWrappers()) this.model.setSubmodule(key, wrapper.activeModule);
    this.configs.clear();
    for (const parameter of this.model.parameters()) parameter.requiresGrad = true;
    return this.model;
  }

  private unknownAdapter(adapterName: string): UnknownAdapterError {
    return new UnknownAdapterError(`Adapter ${adapterName} does not exist (adapters: ${this.adapterNames.join(', ') || 'none'})`);
  }
}

function disposeAdapterWeights(layer: LoraLayer): void {
  const base = new Set<Parameter>(layer.baseLayer.parameters());
  for (const parameter of layer.parameters()) if (!base.has(parameter)) parameter.dispose();
}

