import * as tf from '@tensorflow/tfjs-core';
import {
  BASE_MODEL_ROW,
  Dropout,
  MergeError,
  ModuleDict,
  PeftError,
  TunerLayer,
  currentRowAdapters,
  type TunerBaseLayer,
} from '@peft-ts/core';
import { brandClass, mergedAdaptersError } from '@peft-ts/core/internal';
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
  /** Forget per-adapter state kept outside the layer's dictionaries (called by deleteAdapter). */
  remove?(layer: LoraLayer, adapterName: string): void;
  /**
   * The layer's whole output when this is its one active adapter, through the layer's fused kernels
   * (`LoraLayer.fusedLoraForward`); null where they do not apply, and `forward` runs instead.
   */
  fusedForward?(layer: LoraLayer, adapterName: string, input: tf.Tensor): tf.Tensor | null;
}

/**
 * Wraps a base layer (`base_layer`) and holds any number of named adapters (PEFT's LoraLayer). The adapter
 * bookkeeping and merging are TunerLayer's; subclasses create A/B for their layer type and compute ΔW and the
 * adapter path.
 */
export abstract class LoraLayer<BASE extends TunerBaseLayer = TunerBaseLayer> extends TunerLayer<BASE> {
  static {
    brandClass(this, '@peft-ts/lora:LoraLayer');
  }

  readonly settings = new Map<string, LoraAdapterSettings & { readonly scaling: number }>();
  override readonly otherParameterNames: readonly string[] = ['lora_dropout'];
  private readonly variants = new Map<string, LoraVariant>();

  constructor(base: BASE) {
    super(base);
    this.registerModule('lora_dropout', new ModuleDict<Dropout>());
  }

  get adapterNames(): string[] {
    return [...this.settings.keys()];
  }

  scaling(adapterName: string): number {
    return this.adapterSettings(adapterName).scaling;
  }

  adapterSettings(adapterName: string): LoraAdapterSettings & { readonly scaling: number } {
    const settings = this.settings.get(adapterName);
    if (!settings) throw this.unknownAdapter(adapterName);
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

  protected forgetAdapter(adapterName: string): void {
    this.variants.get(adapterName)?.remove?.(this, adapterName);
    this.variants.delete(adapterName);
    this.settings.delete(adapterName);
  }

  forward(input: tf.Tensor): tf.Tensor {
    const routing = currentRowAdapters();
    if (routing) {
      routing.recognize(this.adapterNames);
      this.checkRowAdapters(input, routing.names);
    }
    if (this.adaptersDisabled) {
      // LoraModel.setAdaptersDisabled unmerges first, as PEFT does here.
      if (this.isMerged) throw mergedAdaptersError('cannot run with adapters disabled', this.mergedAdapters);
      return this.baseLayer.forward(input);
    }
    if (routing) return this.mixedBatchForward(input, routing.names);
    if (this.isMerged) return this.baseLayer.forward(input);
    const adapters = this.activeAdapters.filter((name) => this.settings.has(name));
    if (adapters.length === 1) {
      const variant = this.variants.get(adapters[0]);
      const fused = variant ? (variant.fusedForward?.(this, adapters[0], input) ?? null) : this.fusedLoraForward(adapters[0], input);
      if (fused) return fused;
    }
    return tf.tidy(() => {
      const baseOutput = this.baseLayer.forward(input);
      let result = baseOutput;
      for (const name of this.activeAdapters) {
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
    const withVariant = [...this.activeAdapters, ...names].find((name) => this.variants.has(name));
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

  protected mergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor {
    const variant = this.variants.get(adapterName);
    return variant ? variant.merge(this, adapterName, weight) : tf.add(weight, this.deltaWeight(adapterName));
  }

  protected unmergedWeight(adapterName: string, weight: tf.Tensor): tf.Tensor {
    const variant = this.variants.get(adapterName);
    return variant ? variant.unmerge(this, adapterName, weight) : tf.sub(weight, this.deltaWeight(adapterName));
  }

  /**
   * `base(x)` plus one plain adapter's contribution as one fused kernel, or null (then the base layer and the
   * adapter run as separate ops) where the backend has no such kernel for this layer type. Without `bias` the base
   * layer's bias is left out (a variant that rescales the product adds it after).
   */
  fusedLoraForward(_adapterName: string, _input: tf.Tensor, _options: { readonly bias: boolean } = { bias: true }): tf.Tensor | null {
    return null;
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
}

/**
 * `a + b` for tensors of one shape. tfjs' add keeps both operands until the backward pass ends (only to read their
 * shapes): here that was the base and the adapter outputs of every adapted layer (~38 MB a layer at 4 × 256 tokens).
 */
const addKeepingNothing = tf.customGrad(((a: tf.Tensor, b: tf.Tensor) => ({
  value: tf.add(a, b),
  gradFunc: (dy: tf.Tensor) => [tf.clone(dy), tf.clone(dy)],
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
