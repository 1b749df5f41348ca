import * as tf from '@tensorflow/tfjs-core';
import {
  BASE_MODEL_ROW,
  Dropout,
  MergeError,
  Module,
  ModuleDict,
  ParameterDict,
  PeftError,
  UnknownAdapterError,
  currentRowAdapters,
  type WeightAccess,
} from '@peft-ts/core';
import type { LoftqSettings } from './loftq.js';

export type InitLoraWeights = boolean | 'gaussian' | 'loftq';

/** Everything one adapter on one layer needs, after rank/alpha patterns were resolved for it. */
export type LoraAdapterSettings = {
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly initLoraWeights: InitLoraWeights;
  readonly useRslora: boolean;
  readonly useDora: boolean;
  /** Set with `initLoraWeights: 'loftq'` when the method has a quantizer. */
  readonly loftq?: LoftqSettings;
};

/** `alpha / r`, or rsLoRA's `alpha / √r`. */
export function loraScaling(settings: Pick<LoraAdapterSettings, 'r' | 'alpha' | 'useRslora'>): number {
  return settings.useRslora ? settings.alpha / Math.sqrt(settings.r) : settings.alpha / settings.r;
}

/**
 * How one adapter changes a layer. Plain LoRA is the default; DoRA supplies another variant
 * (PEFT's LoraVariant hooks), chosen per adapter.
 */
export interface LoraVariant {
  /** Called once the adapter's A and B exist (DoRA computes its magnitude here). */
  init(layer: LoraLayer, adapterName: string): void;
  /** The adapter's additive contribution to `baseOutput = base(input)`. */
  forward(layer: LoraLayer, adapterName: string, input: tf.Tensor, baseOutput: tf.Tensor): tf.Tensor;
  /** The base weight with this adapter merged in. */
  merge(layer: LoraLayer, adapterName: string, weight: tf.Tensor): tf.Tensor;
  /** Inverse of `merge`. */
  unmerge(layer: LoraLayer, adapterName: string, weight: tf.Tensor): tf.Tensor;
  /** Forget per-adapter state (called by deleteAdapter). */
  remove?(layer: LoraLayer, adapterName: string): void;
}

type BaseWithWeightAccess = Module & { readonly weightAccess?: WeightAccess; forward(input: tf.Tensor): tf.Tensor };

/**
 * Wraps a base layer (`base_layer`) and holds any number of named adapters (PEFT's LoraLayer).
 * Subclasses create A/B for their layer type and compute ΔW and the adapter path.
 */
export abstract class LoraLayer<BASE extends BaseWithWeightAccess = BaseWithWeightAccess> extends Module {
  readonly settings = new Map<string, LoraAdapterSettings & { readonly scaling: number }>();
  private active: string[] = [];
  private disabled = false;
  private readonly merged: string[] = [];
  private readonly variants = new Map<string, LoraVariant>();

  constructor(base: BASE) {
    super();
    this.registerModule('base_layer', base);
    this.registerModule('lora_dropout', new ModuleDict<Dropout>());
  }

  get baseLayer(): BASE {
    return this.child<BASE>('base_layer');
  }

  get adapterNames(): string[] {
    return [...this.settings.keys()];
  }

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

  scaling(adapterName: string): number {
    return this.adapterSettings(adapterName).scaling;
  }

  adapterSettings(adapterName: string): LoraAdapterSettings & { readonly scaling: number } {
    const settings = this.settings.get(adapterName);
    if (!settings) throw new UnknownAdapterError(`adapter '${adapterName}' does not exist on this layer (has: ${this.adapterNames.join(', ') || 'none'})`);
    return settings;
  }

  dropout(adapterName: string): Dropout {
    return this.child<ModuleDict<Dropout>>('lora_dropout').get(adapterName)!;
  }

  /** Creates (or re-creates) an adapter's parameters. `variant` replaces plain LoRA for it. */
  addAdapter(adapterName: string, settings: LoraAdapterSettings, variant?: LoraVariant): void {
    if (!Number.isInteger(settings.r) || settings.r <= 0) {
      throw new RangeError(`r should be a positive integer, got ${settings.r} (adapter '${adapterName}')`);
    }
    if (this.settings.has(adapterName)) this.deleteAdapter(adapterName);
    this.settings.set(adapterName, { ...settings, scaling: loraScaling(settings) });
    const dropout = new Dropout(settings.dropout);
    dropout.training = this.training;
    this.child<ModuleDict<Dropout>>('lora_dropout').set(adapterName, dropout);
    this.createAdapterWeights(adapterName, settings);
    if (variant) {
      this.variants.set(adapterName, variant);
      variant.init(this, adapterName);
    }
  }

  /** Adapter names that take part in the forward pass (present here and active). */
  setActiveAdapters(names: readonly string[]): void {
    this.active = [...names];
  }

  deleteAdapter(adapterName: string): void {
    this.adapterSettings(adapterName);
    if (this.merged.includes(adapterName)) throw mergedError(`cannot delete adapter '${adapterName}'`, this.merged);
    this.variants.get(adapterName)?.remove?.(this, adapterName);
    this.variants.delete(adapterName);
    this.deleteAdapterWeights(adapterName);
    this.child<ModuleDict<Dropout>>('lora_dropout').delete(adapterName);
    this.settings.delete(adapterName);
    if (this.active.includes(adapterName)) {
      const remaining = this.active.filter((name) => name !== adapterName);
      // PEFT falls back to the alphabetically first remaining adapter.
      this.active = remaining.length ? remaining : this.adapterNames.sort().slice(0, 1);
    }
  }

  setAdaptersDisabled(disabled: boolean): void {
    this.disabled = disabled;
  }

  forward(input: tf.Tensor): tf.Tensor {
    const routing = currentRowAdapters();
    if (routing) {
      routing.recognize(this.adapterNames);
      this.checkRowAdapters(input, routing.names);
    }
    if (this.disabled) {
      // LoraModel.setAdaptersDisabled unmerges first, as PEFT does here.
      if (this.isMerged) throw mergedError('cannot run with adapters disabled', this.merged);
      return this.baseLayer.forward(input);
    }
    if (routing) return this.mixedBatchForward(input, routing.names);
    if (this.isMerged) return this.baseLayer.forward(input);
    return tf.tidy(() => {
      const baseOutput = this.baseLayer.forward(input);
      let result = baseOutput;
      for (const name of this.active) {
        if (!this.settings.has(name)) continue;
        const variant = this.variants.get(name);
        const contribution = variant ? variant.forward(this, name, input, baseOutput) : this.loraOutput(name, input);
        result = addKeepingNothing(result, contribution);
      }
      return result;
    });
  }

  /** PEFT's `_check_forward_args`; DoRA is refused for a named adapter too (PEFT checks only the active ones). */
  private checkRowAdapters(input: tf.Tensor, names: readonly string[]): void {
    if (input.shape[0] !== names.length) {
      throw new PeftError(
        `Length of \`adapterNames\` should be the same as the number of inputs, but got ${names.length} and ${input.shape[0]} respectively`,
      );
    }
    if (this.isMerged) {
      throw new MergeError('Cannot pass `adapterNames` when there are merged adapters, please call `unmergeAdapter()` first');
    }
    const withVariant = [...this.active, ...names].find((name) => this.variants.has(name));
    if (withVariant !== undefined) {
      throw new PeftError(`Cannot pass \`adapterNames\` when DoRA is enabled (adapter '${withVariant}')`);
    }
  }

  /**
   * PEFT's `_mixed_batch_forward`: the base output for every row, plus, for the rows naming an adapter this layer
   * holds, that adapter's contribution computed on those rows alone. Other rows (`__base__`, or an adapter that
   * does not target this layer) keep the base output.
   */
  private mixedBatchForward(input: tf.Tensor, names: readonly string[]): tf.Tensor {
    return tf.tidy(() => {
      const baseOutput = this.baseLayer.forward(input);
      const rowsByAdapter = new Map<string, number[]>();
      names.forEach((name, row) => {
        if (name === BASE_MODEL_ROW || !this.settings.has(name)) return;
        rowsByAdapter.set(name, [...(rowsByAdapter.get(name) ?? []), row]);
      });
      if (rowsByAdapter.size === 0) return baseOutput;
      // Contributions grouped by adapter, then put back in row order (zeros for rows without an adapter here).
      const order: number[] = [];
      const parts: tf.Tensor[] = [];
      for (const [name, rows] of rowsByAdapter) {
        parts.push(this.loraOutput(name, tf.gather(input, rows)));
        order.push(...rows);
      }
      const untouched = names.map((_, row) => row).filter((row) => !order.includes(row));
      if (untouched.length) parts.push(tf.zeros([untouched.length, ...baseOutput.shape.slice(1)]));
      order.push(...untouched);
      const positionOfRow = new Array<number>(order.length);
      order.forEach((row, position) => (positionOfRow[row] = position));
      return tf.add(baseOutput, tf.gather(tf.concat(parts, 0), positionOfRow));
    });
  }

  /** Merges the given (default: active) adapters into the base weight; safe mode checks finiteness first. */
  async merge(options: { adapterNames?: readonly string[]; safeMerge?: boolean } = {}): Promise<string[]> {
    const access = this.weightAccess();
    const candidates = (options.adapterNames ?? this.active).filter((name) => this.settings.has(name) && !this.merged.includes(name));
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

  /** Subtracts merged adapters from the base weight, last merged first. */
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

  private mergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor {
    const variant = this.variants.get(adapterName);
    return variant ? variant.merge(this, adapterName, weight) : tf.add(weight, this.deltaWeight(adapterName));
  }

  private unmergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor {
    const variant = this.variants.get(adapterName);
    return variant ? variant.unmerge(this, adapterName, weight) : tf.sub(weight, this.deltaWeight(adapterName));
  }

  /**
   * A per-adapter parameter dictionary held by this layer (e.g. DoRA's `lora_magnitude_vector`),
   * created on first use so its parameters get PEFT's names `<dict>.<adapter>`.
   */
  parameterDict(name: string): ParameterDict {
    if (!this.hasChild(name)) this.registerModule(name, new ParameterDict());
    return this.child<ParameterDict>(name);
  }

  /** Plain LoRA's contribution `B(A(dropout(x)))·s`. */
  loraOutput(adapterName: string, input: tf.Tensor): tf.Tensor {
    return this.loraDelta(adapterName, this.dropout(adapterName).forward(input));
  }

  /** ΔW in the base weight's layout, scaling included. */
  abstract deltaWeight(adapterName: string): tf.Tensor;
  /** `B(A(x))·s` on an input that already went through the adapter's dropout. */
  abstract loraDelta(adapterName: string, droppedInput: tf.Tensor): tf.Tensor;
  protected abstract createAdapterWeights(adapterName: string, settings: LoraAdapterSettings): void;
  protected abstract deleteAdapterWeights(adapterName: string): void;
}

/**
 * `a + b` for tensors of one shape. tfjs' add keeps both operands until the backward pass ends (only to read their
 * shapes): here that was the base and the adapter outputs of every adapted layer (~38 MB a layer at 4 × 256 tokens).
 */
const addKeepingNothing = tf.customGrad(((a: tf.Tensor, b: tf.Tensor) => ({
  value: tf.add(a, b),
  gradFunc: (dy: tf.Tensor) => [tf.clone(dy), tf.clone(dy)],
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** Read back asynchronously: device backends (WebGPU) cannot read a tensor synchronously under Node. */
async function isAllFinite(tensor: tf.Tensor): Promise<boolean> {
  const allFinite = tf.tidy(() => tf.all(tf.isFinite(tensor)));
  try {
    return (await allFinite.data())[0] === 1;
  } finally {
    allFinite.dispose();
  }
}

/** PEFT unmerges implicitly here; unmerging awaits the base's setBaseWeight, so synchronous callers are refused instead. */
function mergedError(action: string, merged: readonly string[]): MergeError {
  return new MergeError(`${action}: ${merged.join(', ')} merged into the base weight; await unmerge() first`);
}
