import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { MergeError, UnknownAdapterError } from '../errors.js';
import { Module, ModuleDict, ParameterDict } from '../module.js';
import type { WeightAccess } from '../weight-access.js';

/** A layer an adapter layer can wrap: merging goes through its WeightAccess. */
export type TunerBaseLayer = Module & { readonly weightAccess?: WeightAccess; forward(input: tf.Tensor): tf.Tensor };

/**
 * What every adapter layer shares, whatever the method (PEFT's BaseTunerLayer): the wrapped `base_layer`, the
 * named adapters it holds in per-adapter dictionaries, which of them are active, merged or disabled, deleting
 * one, and merging into the base weight. A method supplies the per-adapter parameters, its forward, and how an
 * adapter changes the base weight (`mergedWeight` / `unmergedWeight`).
 */
export abstract class TunerLayer<BASE extends TunerBaseLayer = TunerBaseLayer> extends Module {
  static {
    brandClass(this, '@peft-ts/core:TunerLayer');
  }

  /**
   * Children holding one trainable entry per adapter (PEFT `adapter_layer_names`), e.g. `lora_A`. Deleting an
   * adapter removes and disposes its entry in each.
   */
  abstract readonly adapterLayerNames: readonly string[];
  /** Other per-adapter children (PEFT `other_param_names`), e.g. `lora_dropout`; deleted the same way. */
  readonly otherParameterNames: readonly string[] = [];
  private active: string[] = [];
  private disabled = false;
  private readonly merged: string[] = [];
  /** Per-adapter dictionaries added on first use by `parameterDict` (e.g. DoRA's magnitudes). */
  private readonly extraDictNames = new Set<string>();

  constructor(base: BASE) {
    super();
    this.registerModule('base_layer', base);
  }

  get baseLayer(): BASE {
    return this.child<BASE>('base_layer');
  }

  /** The adapters this layer holds. */
  abstract get adapterNames(): string[];

  /** The adapters that take part in the forward pass; names this layer does not hold are skipped. */
  get activeAdapters(): readonly string[] {
    return this.active;
  }

  get mergedAdapters(): readonly string[] {
    return this.merged;
  }

  get isMerged(): boolean {
    return this.merged.length > 0;
  }

  get adaptersDisabled(): boolean {
    return this.disabled;
  }

  /** True over a shape-only (meta) base layer: adapters are then planned, not allocated. */
  get isShapeOnly(): boolean {
    return this.baseLayer.parameters().some((parameter) => parameter.isMeta);
  }

  hasAdapter(adapterName: string): boolean {
    return this.adapterNames.includes(adapterName);
  }

  setActiveAdapters(names: readonly string[]): void {
    this.active = [...names];
  }

  setAdaptersDisabled(disabled: boolean): void {
    this.disabled = disabled;
  }

  /**
   * A per-adapter parameter dictionary held by this layer, created on first use so its parameters get PEFT's
   * names `<dict>.<adapter>`; deleting an adapter removes its entry.
   */
  parameterDict(name: string): ParameterDict {
    if (!this.hasChild(name)) {
      this.registerModule(name, new ParameterDict());
      this.extraDictNames.add(name);
    }
    return this.child<ParameterDict>(name);
  }

  /** Removes an adapter and disposes its parameters; an active one is replaced as PEFT does. Merged ones are refused. */
  deleteAdapter(adapterName: string): void {
    if (!this.hasAdapter(adapterName)) throw this.unknownAdapter(adapterName);
    if (this.merged.includes(adapterName)) throw mergedAdaptersError(`cannot delete adapter '${adapterName}'`, this.merged);
    this.forgetAdapter(adapterName);
    for (const name of [...this.adapterLayerNames, ...this.otherParameterNames, ...this.extraDictNames]) {
      if (!this.hasChild(name)) continue;
      const dictionary = this.child(name);
      if (dictionary instanceof ModuleDict || dictionary instanceof ParameterDict) {
        dictionary.get(adapterName)?.dispose();
        dictionary.delete(adapterName);
      }
    }
    if (this.active.includes(adapterName)) {
      const remaining = this.active.filter((name) => name !== adapterName);
      // PEFT falls back to the alphabetically first remaining adapter.
      this.active = remaining.length ? remaining : this.adapterNames.sort().slice(0, 1);
    }
  }

  /** Merges the given (default: active) adapters into the base weight; safe mode checks finiteness first. */
  async merge(options: { adapterNames?: readonly string[]; safeMerge?: boolean } = {}): Promise<string[]> {
    const access = this.weightAccess();
    const candidates = (options.adapterNames ?? this.active).filter((name) => this.hasAdapter(name) && !this.merged.includes(name));
    if (candidates.length === 0) return [];
    const merged = tf.tidy(() => {
      let weight = access.getBaseWeight();
      for (const name of candidates) weight = this.mergedWeight(name, weight);
      return weight;
    });
    try {
      if (options.safeMerge && !(await isAllFinite(merged))) {
        throw new MergeError(`NaNs detected in the merged weights. The adapter ${candidates.join(', ')} seems to be broken`);
      }
      await access.setBaseWeight(merged);
    } finally {
      merged.dispose();
    }
    this.merged.push(...candidates);
    return candidates;
  }

  /** Takes merged adapters back out of the base weight, last merged first. */
  async unmerge(): Promise<void> {
    if (!this.isMerged) return;
    const access = this.weightAccess();
    const restored = tf.tidy(() => {
      let weight = access.getBaseWeight();
      for (const name of [...this.merged].reverse()) weight = this.unmergedWeight(name, weight);
      return weight;
    });
    try {
      await access.setBaseWeight(restored);
    } finally {
      restored.dispose();
    }
    this.merged.length = 0;
  }

  protected weightAccess(): WeightAccess {
    const access = this.baseLayer.weightAccess;
    if (!access || !access.supportsMerge) {
      throw new MergeError(`cannot merge into a ${this.baseLayer.kind} layer: its weights do not support merging`);
    }
    return access;
  }

  protected unknownAdapter(adapterName: string): UnknownAdapterError {
    return new UnknownAdapterError(`adapter '${adapterName}' does not exist on this layer (has: ${this.adapterNames.join(', ') || 'none'})`);
  }

  /** Forgets what the method keeps outside the per-adapter dictionaries (settings, hooks); called by `deleteAdapter`. */
  protected abstract forgetAdapter(adapterName: string): void;
  /** The base weight with this adapter merged in. */
  protected abstract mergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor;
  /** Inverse of `mergedWeight`. */
  protected abstract unmergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor;
}

/** PEFT unmerges implicitly here; unmerging awaits the base's setBaseWeight, so synchronous callers are refused instead. */
export function mergedAdaptersError(action: string, merged: readonly string[]): MergeError {
  return new MergeError(`${action}: ${merged.join(', ')} merged into the base weight; await unmerge() first`);
}

/** Read back asynchronously: device backends (WebGPU) cannot read a tensor synchronously under Node. */
async function isAllFinite(tensor: tf.Tensor): Promise<boolean> {
  const allFinite = tf.tidy(() => tf.all(tf.isFinite(tensor)));
  try {
    return (await allFinite.data())[0] === 1;
  } finally {
    allFinite.dispose();
  }
}
