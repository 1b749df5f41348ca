import { brandClass } from '@peft-ts/config/internal';
import { MergeError, PeftError, UnknownAdapterError } from '../errors.js';
import { countParameters, type ParameterCount } from '../parameter-count.js';
import type { Module } from '../module.js';
import type { Parameter } from '../parameter.js';
import type { AdapterMethod, AdapterTargetModel } from './adapter-method.js';
import { injectAdapter } from './inject-adapter.js';
import { ModulesToSaveWrapper } from './modules-to-save-wrapper.js';
import type { TargetSelection } from './target-matching.js';
import type { TunerLayer } from './tuner-layer.js';

/** What every adapter config carries beyond its targets. */
export type TunerConfig = TargetSelection & {
  /** Modules trained as full copies per adapter (PEFT `modules_to_save`). */
  readonly modulesToSave?: readonly string[] | null;
  /** Loaded for inference: the adapter's parameters stay frozen. */
  readonly inferenceMode?: boolean;
};

export type TunerModelOptions = {
  adapterName?: string;
  /** Where PEFT's warnings go (default `console.warn`): e.g. switching adapters on a merged model unmerges it. */
  onWarning?: (message: string) => void;
};

export type MergeOptions = { adapterNames?: readonly string[]; safeMerge?: boolean };

/**
 * A model with adapters of one method injected in place (PEFT's BaseTuner with PeftModel's adapter bookkeeping):
 * the config of each adapter, which are active, adding, activating, disabling, deleting, merging and unloading
 * them, modules_to_save copies, and which parameters train. A method supplies its adapter layers (through its
 * `AdapterMethod`) and may hook into injection, merging and trainability.
 */
export abstract class TunerModel<CONFIG extends TunerConfig, LAYER extends TunerLayer, MODEL extends AdapterTargetModel = AdapterTargetModel> {
  static {
    brandClass(this, '@peft-ts/core:TunerModel');
  }

  readonly model: MODEL;
  readonly method: AdapterMethod<CONFIG>;
  private readonly configs = new Map<string, CONFIG>();
  protected readonly warn: (message: string) => void;
  private activeNames: string[] = [];

  /** Injects the first adapter. The hooks run from here, before a subclass's own fields are initialised. */
  constructor(model: MODEL, method: AdapterMethod<CONFIG>, config: CONFIG, options: TunerModelOptions = {}) {
    this.model = model;
    this.method = method;
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

  /** The adapters whose contributions the forward pass combines (PEFT `active_adapters`). */
  get activeAdapters(): readonly string[] {
    return this.activeNames;
  }

  get adapterNames(): string[] {
    return [...this.configs.keys()];
  }

  config(adapterName = this.activeAdapter): CONFIG {
    const config = this.configs.get(adapterName);
    if (!config) throw this.unknownAdapter(adapterName);
    return config;
  }

  /** Every adapter layer of this method with its dotted path. */
  adapterLayers(): [string, LAYER][] {
    return this.model.namedModules().filter((entry): entry is [string, LAYER] => this.isAdapterLayer(entry[1]));
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
  addAdapter(adapterName: string, config: CONFIG): void {
    if (this.configs.has(adapterName)) throw new PeftError(`adapter '${adapterName}' already exists`);
    this.inject(adapterName, config);
    this.activate(this.activeNames);
  }

  /**
   * Activates one adapter or several (PEFT `set_adapter`), each one's parameters training unless it was loaded
   * for inference. A merged model is unmerged first, with PEFT's warning. With modules_to_save, only one adapter
   * can be active, as in PEFT.
   */
  async setAdapter(adapterNames: string | readonly string[]): Promise<void> {
    const names = [...new Set(typeof adapterNames === 'string' ? [adapterNames] : adapterNames)];
    if (names.length === 0) throw new PeftError('setAdapter: expected at least one adapter name');
    for (const name of names) if (!this.configs.has(name)) throw this.unknownAdapter(name);
    if (names.length > 1 && this.modulesToSaveWrappers().length > 0) {
      throw new PeftError(`Only one adapter can be set at a time for modules_to_save (got ${names.join(', ')})`);
    }
    if (this.adapterLayers().some(([, layer]) => layer.isMerged)) {
      this.warn('Adapter cannot be set when the model is merged. Unmerging the model first.');
      await this.unmergeAdapter();
    }
    this.activate(names);
  }

  /**
   * Removes an adapter (PEFT `delete_adapter`). If it was active, the other active ones stay, else the
   * alphabetically first remaining adapter becomes active. Deleting a merged adapter is refused: PEFT would
   * leave its change in the base weights and fail to unmerge afterwards.
   */
  deleteAdapter(adapterName: string): void {
    if (!this.configs.has(adapterName)) throw this.unknownAdapter(adapterName);
    const merged = new Set(this.adapterLayers().flatMap(([, layer]) => layer.mergedAdapters));
    if (merged.has(adapterName)) {
      throw new MergeError(`cannot delete adapter '${adapterName}': it is merged into the base weights; await unmergeAdapter() first`);
    }
    for (const [, layer] of this.adapterLayers()) {
      if (layer.hasAdapter(adapterName)) layer.deleteAdapter(adapterName);
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
    for (const [, layer] of this.adapterLayers()) layer.setAdaptersDisabled(disabled);
    for (const [, wrapper] of this.modulesToSaveWrappers()) wrapper.adaptersDisabled = disabled;
  }

  /** Merges adapters (default: the active ones, each of them) into the base weights in place (PEFT `merge_adapter`). */
  async mergeAdapter(options: MergeOptions = {}): Promise<void> {
    this.checkMergeInPlace();
    for (const [, layer] of this.adapterLayers()) await layer.merge({ adapterNames: options.adapterNames ?? this.activeNames, safeMerge: options.safeMerge });
  }

  async unmergeAdapter(): Promise<void> {
    for (const [, layer] of this.adapterLayers()) await layer.unmerge();
  }

  /** Merges, then replaces every adapter layer by its base layer; returns the plain model. */
  async mergeAndUnload(options: MergeOptions = {}): Promise<MODEL> {
    this.prepareMergeAndUnload();
    // Merge everywhere first so a safe-merge failure leaves the model wrapped and unchanged.
    const layers = this.adapterLayers();
    const mergedSoFar: LAYER[] = [];
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
   * Removes every adapter layer without merging and returns the base model (PEFT `unload`). As in PEFT, layers
   * merged before keep their merged weights: `unmergeAdapter()` first to get the original weights back.
   */
  async unload(): Promise<MODEL> {
    return this.unwrap(this.adapterLayers());
  }

  /** Trainable parameters by dotted path (shared tensors once). */
  trainableParameters(): [string, Parameter][] {
    return this.model.namedParameters().filter(([, parameter]) => parameter.requiresGrad) as [string, Parameter][];
  }

  countParameters(): ParameterCount {
    return countParameters(this.model);
  }

  /** Whether a module is one of this method's adapter layers. */
  protected abstract isAdapterLayer(module: Module): module is LAYER;

  /** Checks a new adapter's config and prepares the model before its layers are injected. */
  protected prepareInjection(_adapterName: string, _config: CONFIG): void {}

  /** Refuses an in-place merge the model cannot take. */
  protected checkMergeInPlace(): void {}

  /** Prepares the model for merging each layer for good (mergeAndUnload). */
  protected prepareMergeAndUnload(): void {}

  /** Marks what trains besides the adapter parameters and the modules_to_save copies (e.g. biases). */
  protected markMoreTrainable(_trainingAdapters: readonly string[]): void {}

  private inject(adapterName: string, config: CONFIG): void {
    this.prepareInjection(adapterName, config);
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
    for (const [, layer] of this.adapterLayers()) layer.setActiveAdapters(adapterNames);
    // Several active adapters come with no modules_to_save (setAdapter refuses that), so one name decides here.
    const [single] = adapterNames;
    for (const [, wrapper] of this.modulesToSaveWrappers()) {
      wrapper.activeAdapter = single !== undefined && wrapper.copyFor(single) ? single : null;
    }
    this.activeNames = [...adapterNames];
    this.markTrainable();
  }

  /**
   * PEFT `_mark_only_adapters_as_trainable`: a parameter trains when a segment of its path starts with the
   * method's prefix (or is a modules_to_save copy) and the next segment names an active adapter not loaded for
   * inference.
   */
  private markTrainable(): void {
    const training = this.activeNames.filter((name) => this.configs.get(name)?.inferenceMode === false);
    for (const [name, parameter] of this.model.namedParameters({ includeShared: true })) {
      const parts = name.split('.');
      const adapterPart = parts.findIndex((part) => part.startsWith(this.method.parameterPrefix));
      const copyPart = parts.indexOf('modules_to_save');
      const segment = adapterPart >= 0 ? adapterPart : copyPart;
      parameter.requiresGrad = segment >= 0 && training.includes(parts[segment + 1]);
    }
    this.markMoreTrainable(training);
  }

  private unwrap(layers: [string, LAYER][]): MODEL {
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

function disposeAdapterWeights(layer: TunerLayer): void {
  const base = new Set<Parameter>(layer.baseLayer.parameters());
  for (const parameter of layer.parameters()) if (!base.has(parameter)) parameter.dispose();
}
