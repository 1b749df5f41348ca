import {
  PeftError,
  SeededRandom,
  UnknownAdapterError,
  hostMatrix,
  svd,
  svdOfProduct,
  type Parameter,
  type SingularValueDecomposition,
} from '@peft-ts/core';
import { multiply, nextSeed, resolveTargetSelection } from '@peft-ts/core/internal';
import type { LoraConfig } from '@peft-ts/config';
import { LoraConv2d } from './lora-conv2d.js';
import { LoraEmbedding } from './lora-embedding.js';
import type { LoraLayer } from './lora-layer.js';
import { LoraLinear } from './lora-linear.js';
import type { LoraModel } from './lora-model.js';
import { setParameterData } from './set-parameter-data.js';
import { mergeTaskTensors, type MajoritySignMethod, type MergeRule } from './merge-utils.js';

export const combinationTypes = [
  'svd',
  'linear',
  'cat',
  'ties',
  'ties_svd',
  'dare_linear',
  'dare_ties',
  'dare_linear_svd',
  'dare_ties_svd',
  'magnitude_prune',
  'magnitude_prune_svd',
] as const;
export type CombinationType = (typeof combinationTypes)[number];

export type WeightedAdapterOptions = {
  /** Rank of the result for the *_svd types; default the largest source rank. */
  readonly svdRank?: number;
  /** Quantile (0…1) of the SVD factors' entries to clamp them to (±); default no clamping. */
  readonly svdClamp?: number;
  /**
   * torch.linalg.svd's `full_matrices` for a dense ΔW's SVD. The adapter is the same either way (only the
   * leading svdRank vectors are kept); the default false skips completing them to square matrices (PEFT's
   * default is true).
   */
  readonly svdFullMatrices?: boolean;
  /** Fraction of entries kept by ties, dare_* and magnitude_prune (and their *_svd forms). */
  readonly density?: number;
  /** How ties and dare_ties elect each entry's sign. Default 'total'. */
  readonly majoritySignMethod?: MajoritySignMethod;
  /** Draws DARE's masks; default a generator seeded from the global stream (`manualSeed`). */
  readonly random?: SeededRandom;
};

/** Every type but these prunes, so it needs a density. */
const pruningTypes: readonly CombinationType[] = combinationTypes.filter((type) => type !== 'svd' && type !== 'linear' && type !== 'cat');
const sameRankTypes: readonly CombinationType[] = ['linear', 'ties', 'dare_linear', 'dare_ties', 'magnitude_prune'];

/**
 * PEFT 0.10's `add_weighted_adapter`: a new adapter `adapterName` combining `adapters` with `weights`.
 * Its config is the first adapter's with r and lora_alpha set to the new rank (scaling 1, since every rule
 * folds each source's scaling into A/B) and the union of the target modules; it is added inactive.
 *
 * - cat: A and B stacked (rank = Σ ranks); ΔW = Σ wᵢ·ΔWᵢ exactly.
 * - linear, ties, dare_*, magnitude_prune: A and B each merged with weights √(wᵢ·sᵢ) (equal ranks needed).
 * - *_svd: the rule applied to (wᵢ·sᵢ)·ΔWᵢ (ΔWᵢ already holds sᵢ: PEFT's double scaling, kept for parity),
 *   then truncated to svdRank by SVD.
 */
export async function addWeightedAdapter(
  lora: LoraModel,
  adapters: readonly string[],
  weights: readonly number[],
  adapterName: string,
  requestedType: CombinationType = 'svd',
  options: WeightedAdapterOptions = {},
): Promise<void> {
  const combinationType = checkRequest(lora, adapters, weights, adapterName, requestedType, options);
  const configs = adapters.map((name) => lora.config(name));
  const newRank = combinedRank(combinationType, configs, options.svdRank);
  const config: LoraConfig = {
    ...configs[0],
    r: newRank,
    loraAlpha: newRank,
    targetModules: combinedTargetModules(lora, adapters, configs),
    // rsLoRA's alpha/√r would scale the combined A·B by √r (PEFT fixed that after 0.10 the same way).
    useRslora: false,
    // The combination overwrites A and B; LoftQ would only re-quantize the base weights first.
    initLoraWeights: configs[0].initLoraWeights === 'loftq' ? true : configs[0].initLoraWeights,
    loftqConfig: {},
  };
  const random = options.random ?? new SeededRandom(nextSeed());
  lora.addAdapter(adapterName, config);
  try {
    for (const [key, layer] of lora.loraLayers()) {
      const target = factorsOf(layer, adapterName);
      if (!target) continue;
      const sources = await sourceFactors(layer, adapters, weights);
      if (sources.length === 0) {
        throw new PeftError(`addWeightedAdapter: layer '${key}' gets adapter '${adapterName}' but holds none of ${adapters.join(', ')}`);
      }
      const combined =
        combinationType === 'cat'
          ? concatenate(sources, newRank)
          : combinationType.endsWith('_svd') || combinationType === 'svd'
            ? svdCombination(key, combinationType, sources, newRank, random, options)
            : factorwiseCombination(combinationType as MergeRule, sources, random, options);
      setParameterData(target.a, combined.a.data);
      setParameterData(target.b, combined.b.data);
    }
  } catch (error) {
    lora.deleteAdapter(adapterName);
    throw error;
  }
}

function checkRequest(
  lora: LoraModel,
  adapters: readonly string[],
  weights: readonly number[],
  adapterName: string,
  combinationType: CombinationType,
  options: WeightedAdapterOptions,
): CombinationType {
  const fail = (message: string) => new PeftError(`addWeightedAdapter: ${message}`);
  if (lora.adapterNames.includes(adapterName)) throw fail(`adapter '${adapterName}' already exists`);
  if (adapters.length === 0) throw fail('adapters: expected at least one adapter name');
  for (const name of adapters) {
    if (!lora.adapterNames.includes(name)) {
      throw new UnknownAdapterError(`addWeightedAdapter: adapter ${name} does not exist (adapters: ${lora.adapterNames.join(', ')})`);
    }
  }
  if (weights.length !== adapters.length) throw fail(`weights: expected ${adapters.length} weights (one per adapter), got ${weights.length}`);
  if (weights.some((weight) => !Number.isFinite(weight))) throw fail(`weights: expected finite numbers, got [${weights.join(', ')}]`);
  if (!combinationTypes.includes(combinationType)) {
    throw fail(`combinationType: expected one of ${combinationTypes.join(', ')}, got '${String(combinationType)}'`);
  }
  // One adapter can only be scaled, as in PEFT.
  const effectiveType = adapters.length === 1 ? 'linear' : combinationType;
  for (const name of adapters) {
    const config = lora.config(name);
    if (config.useDora) throw fail(`adapter '${name}' uses DoRA: its magnitude vector cannot be combined`);
    if (Object.keys(config.rankPattern ?? {}).length > 0 || Object.keys(config.alphaPattern ?? {}).length > 0) {
      throw fail(`adapter '${name}' has rank_pattern or alpha_pattern: the combined rank is defined from r alone`);
    }
  }
  if (pruningTypes.includes(effectiveType)) {
    const { density } = options;
    if (density === undefined || !(density >= 0 && density <= 1)) {
      throw fail(`density: ${effectiveType} needs a density between 0 and 1 (fraction of entries kept), got ${density}`);
    }
  }
  const method = options.majoritySignMethod ?? 'total';
  if (method !== 'total' && method !== 'frequency') throw fail(`majoritySignMethod: expected 'total' or 'frequency', got '${String(method)}'`);
  if (options.svdRank !== undefined && !(Number.isInteger(options.svdRank) && options.svdRank > 0)) {
    throw fail(`svdRank: expected a positive integer, got ${options.svdRank}`);
  }
  if (options.svdClamp !== undefined && !(options.svdClamp >= 0 && options.svdClamp <= 1)) {
    throw fail(`svdClamp: expected a quantile between 0 and 1, got ${options.svdClamp}`);
  }
  if (sameRankTypes.includes(effectiveType)) {
    // √(w·s) per factor: PEFT 0.10 fails on a negative product too (math domain error).
    const negative = adapters.find((_, index) => weights[index] < 0);
    if (negative !== undefined) {
      throw fail(`weights: ${effectiveType} takes √(weight·scaling) for each factor, so weights must be ≥ 0 (adapter '${negative}' has ${weights[adapters.indexOf(negative)]})`);
    }
  }
  return effectiveType;
}

function combinedRank(combinationType: CombinationType, configs: readonly LoraConfig[], svdRank: number | undefined): number {
  const ranks = configs.map((config) => config.r);
  if (sameRankTypes.includes(combinationType)) {
    if (new Set(ranks).size !== 1) {
      throw new PeftError(
        `addWeightedAdapter: all adapters must have the same r value when using combination_type ${combinationType} (got r = ${ranks.join(', ')}); use cat or an *_svd type`,
      );
    }
    return ranks[0];
  }
  if (combinationType === 'cat') return ranks.reduce((sum, rank) => sum + rank, 0);
  return svdRank ?? Math.max(...ranks);
}

/** PEFT: a union of the name sets, or the regexes joined as alternatives; never a mix. */
function combinedTargetModules(lora: LoraModel, adapters: readonly string[], configs: readonly LoraConfig[]): string[] | string {
  const resolved = configs.map((config) => resolveTargetSelection(lora.model, config).targetModules);
  if (resolved.every((targets) => Array.isArray(targets))) return [...new Set(resolved.flatMap((targets) => targets as string[]))];
  if (resolved.every((targets) => typeof targets === 'string')) return resolved.map((pattern) => `(${pattern})`).join('|');
  throw new PeftError(
    `addWeightedAdapter: target_modules of ${adapters.join(', ')} mix lists and regex strings; combining them is not supported (PEFT refuses this too)`,
  );
}

/** A factor as a host matrix: A is r × (everything else), B is out × r. */
type Factor = { readonly rows: number; readonly columns: number; readonly data: Float64Array };
type SourceFactors = { readonly a: Factor; readonly b: Factor; readonly weight: number; readonly scaling: number };

function factorsOf(layer: LoraLayer, adapterName: string): { a: Parameter; b: Parameter } | undefined {
  if (!layer.adapterNames.includes(adapterName)) return undefined;
  if (layer instanceof LoraLinear || layer instanceof LoraConv2d) {
    return { a: layer.loraA(adapterName).weight, b: layer.loraB(adapterName).weight };
  }
  if (layer instanceof LoraEmbedding) return { a: layer.embeddingA(adapterName), b: layer.embeddingB(adapterName) };
  throw new PeftError(`addWeightedAdapter: cannot combine adapters on a ${layer.kind} layer`);
}

async function sourceFactors(layer: LoraLayer, adapters: readonly string[], weights: readonly number[]): Promise<SourceFactors[]> {
  const sources: SourceFactors[] = [];
  for (const [index, name] of adapters.entries()) {
    const factors = factorsOf(layer, name);
    if (!factors) continue;
    const rank = factors.a.shape[0];
    sources.push({
      a: { rows: rank, columns: factors.a.size / rank, data: Float64Array.from(await factors.a.value.data()) },
      b: { rows: factors.b.shape[0], columns: rank, data: Float64Array.from(await factors.b.value.data()) },
      weight: weights[index],
      scaling: layer.scaling(name),
    });
  }
  return sources;
}

/** A = [w₁s₁A₁; w₂s₂A₂; …], B = [B₁ B₂ …], zero-padded to `rank` where some sources are absent. */
function concatenate(sources: readonly SourceFactors[], rank: number): { a: Factor; b: Factor } {
  const { columns } = sources[0].a;
  const outputs = sources[0].b.rows;
  const a = new Float64Array(rank * columns);
  const b = new Float64Array(outputs * rank);
  let offset = 0;
  for (const { a: sourceA, b: sourceB, weight, scaling } of sources) {
    for (let entry = 0; entry < sourceA.data.length; entry++) a[offset * columns + entry] = sourceA.data[entry] * weight * scaling;
    for (let row = 0; row < outputs; row++) {
      for (let column = 0; column < sourceB.columns; column++) b[row * rank + offset + column] = sourceB.data[row * sourceB.columns + column];
    }
    offset += sourceA.rows;
  }
  return { a: { rows: rank, columns, data: a }, b: { rows: outputs, columns: rank, data: b } };
}

function factorwiseCombination(
  rule: MergeRule,
  sources: readonly SourceFactors[],
  random: SeededRandom,
  options: WeightedAdapterOptions,
): { a: Factor; b: Factor } {
  const factorWeights = sources.map(({ weight, scaling }) => {
    if (weight * scaling < 0) throw new PeftError(`addWeightedAdapter: ${rule} needs weight·scaling ≥ 0 (a negative lora_alpha gives scaling ${scaling})`);
    return Math.sqrt(weight * scaling);
  });
  const mergeOptions = { density: options.density, majoritySignMethod: options.majoritySignMethod, random };
  const a = mergeTaskTensors(rule, sources.map((source) => source.a.data), factorWeights, mergeOptions);
  const b = mergeTaskTensors(rule, sources.map((source) => source.b.data), factorWeights, mergeOptions);
  return { a: { ...sources[0].a, data: a }, b: { ...sources[0].b, data: b } };
}

function svdCombination(
  key: string,
  combinationType: CombinationType,
  sources: readonly SourceFactors[],
  rank: number,
  random: SeededRandom,
  options: WeightedAdapterOptions,
): { a: Factor; b: Factor } {
  const rows = sources[0].b.rows;
  const columns = sources[0].a.columns;
  if (rank > Math.min(rows, columns)) {
    throw new PeftError(`addWeightedAdapter: layer '${key}': svd rank ${rank} exceeds its ΔW's smaller side (${rows}×${columns}); pass a smaller svdRank`);
  }
  const { u, s, vt } = decomposeCombination(combinationType, sources, rank, random, options);
  // B = U[:, :r]·diag(S[:r]), A = Vᵀ[:r, :].
  const b = new Float64Array(rows * rank);
  for (let row = 0; row < rows; row++) for (let j = 0; j < rank; j++) b[row * rank + j] = u.data[row * u.columns + j] * s[j];
  const a = vt.data.slice(0, rank * columns);
  if (options.svdClamp !== undefined) {
    const limit = quantile(Float64Array.from([...b, ...a]), options.svdClamp);
    clampInPlace(b, -limit, limit);
    clampInPlace(a, -limit, limit);
  }
  return { a: { rows: rank, columns, data: a }, b: { rows, columns: rank, data: b } };
}

/** The SVD of the combined ΔW = rule over (wᵢ·sᵢ)·ΔWᵢ. */
function decomposeCombination(
  combinationType: CombinationType,
  sources: readonly SourceFactors[],
  rank: number,
  random: SeededRandom,
  options: WeightedAdapterOptions,
): SingularValueDecomposition {
  const rows = sources[0].b.rows;
  const columns = sources[0].a.columns;
  const totalRank = sources.reduce((sum, source) => sum + source.a.rows, 0);
  if (combinationType === 'svd' && rank <= totalRank && totalRank < Math.min(rows, columns)) {
    // A weighted sum of low-rank products is the product of the stacked factors [B₁ B₂ …]·[c₁A₁; c₂A₂; …]
    // with cᵢ = (wᵢ·sᵢ)·sᵢ: decomposed as factors, without the rows × columns matrix.
    const stacked = concatenate(sources.map((source) => ({ ...source, weight: source.weight * source.scaling })), totalRank);
    return svdOfProduct(hostMatrix(rows, totalRank, stacked.b.data), hostMatrix(totalRank, columns, stacked.a.data));
  }
  const rule: MergeRule = combinationType === 'svd' ? 'linear' : (combinationType.slice(0, -'_svd'.length) as MergeRule);
  const deltas = sources.map(({ a, b, scaling }) => {
    const product = multiply(hostMatrix(b.rows, b.columns, b.data), hostMatrix(a.rows, a.columns, a.data)).data;
    return product.map((value) => value * scaling);
  });
  const delta = mergeTaskTensors(rule, deltas, sources.map(({ weight, scaling }) => weight * scaling), {
    density: options.density,
    majoritySignMethod: options.majoritySignMethod,
    random,
  });
  return svd(hostMatrix(rows, columns, delta), { fullMatrices: options.svdFullMatrices });
}

/** torch.quantile's default (linear interpolation between the closest ranks). */
export function quantile(values: Float64Array, q: number): number {
  const sorted = Float64Array.from(values).sort();
  const position = q * (sorted.length - 1);
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower);
}

/** torch.clamp: max(min) first, then min(max), so a lower bound above the upper one gives the upper one. */
function clampInPlace(values: Float64Array, low: number, high: number): void {
  for (let index = 0; index < values.length; index++) values[index] = Math.min(Math.max(values[index], low), high);
}
