import { PeftError, type SeededRandom } from '@peft-ts/core';

/**
 * PEFT 0.10's task-merging rules (utils/merge_utils.py) on host float64 arrays of one length: each
 * takes the task tensors and one weight per tensor and returns the merged tensor.
 */
export type MajoritySignMethod = 'total' | 'frequency';

export type MergeRule = 'linear' | 'ties' | 'dare_linear' | 'dare_ties' | 'magnitude_prune';

export type MergeRuleOptions = {
  /** Fraction of entries kept by pruning (ties, dare_*, magnitude_prune); ≥ 1 keeps everything. */
  readonly density?: number;
  readonly majoritySignMethod?: MajoritySignMethod;
  /** Draws DARE's keep masks. */
  readonly random?: SeededRandom;
};

/** Σ wᵢ·tᵢ. */
export function taskArithmetic(tensors: readonly Float64Array[], weights: readonly number[]): Float64Array {
  const result = new Float64Array(sameLength(tensors));
  tensors.forEach((tensor, index) => {
    const weight = weights[index];
    for (let entry = 0; entry < result.length; entry++) result[entry] += weight * tensor[entry];
  });
  return result;
}

/**
 * Keeps the ⌊density·n⌋ entries of largest magnitude, zeroes the rest. Among equal magnitudes the
 * earlier entry wins (torch.topk leaves that order unspecified).
 */
export function magnitudePrune(tensor: Float64Array, density: number): Float64Array {
  if (density >= 1) return tensor;
  const keep = Math.trunc(density * tensor.length);
  const order = Array.from(tensor.keys()).sort((a, b) => Math.abs(tensor[b]) - Math.abs(tensor[a]) || a - b);
  const result = new Float64Array(tensor.length);
  for (const index of order.slice(0, keep)) result[index] = tensor[index];
  return result;
}

/**
 * DARE's drop: keeps each entry with probability `density` and divides the kept ones by it, so the
 * expectation is the input. (PEFT 0.10 computes that division but drops its result; PEFT fixed this
 * later, and the rescaled form is the method's definition.)
 */
export function randomPrune(tensor: Float64Array, density: number, random: SeededRandom): Float64Array {
  if (density >= 1) return tensor;
  return tensor.map((value) => (random.next() < density ? value / density : 0));
}

/**
 * For each entry, whether each tensor's sign agrees with the elected one: the sign of the sum ("total")
 * or of the sign count ("frequency"), ties electing +. Zeros never agree.
 */
export function majoritySignMask(tensors: readonly Float64Array[], method: MajoritySignMethod): boolean[][] {
  const length = sameLength(tensors);
  const elected = new Float64Array(length);
  for (const tensor of tensors) {
    for (let entry = 0; entry < length; entry++) elected[entry] += method === 'total' ? tensor[entry] : Math.sign(tensor[entry]);
  }
  return tensors.map((tensor) => Array.from(tensor, (value, entry) => Math.sign(value) === (elected[entry] >= 0 ? 1 : -1)));
}

/** The mean over the tensors whose sign agrees, per entry (0 where none does). */
export function disjointMerge(tensors: readonly Float64Array[], mask: readonly boolean[][]): Float64Array {
  const length = sameLength(tensors);
  const sum = new Float64Array(length);
  const count = new Float64Array(length);
  tensors.forEach((tensor, index) => {
    for (let entry = 0; entry < length; entry++) {
      if (!mask[index][entry]) continue;
      sum[entry] += tensor[entry];
      count[entry] += 1;
    }
  });
  return sum.map((value, entry) => value / Math.max(count[entry], 1));
}

/** One of PEFT's merge rules: prune (by magnitude, at random, or not), then a weighted sum or a TIES merge. */
export function mergeTaskTensors(
  rule: MergeRule,
  tensors: readonly Float64Array[],
  weights: readonly number[],
  options: MergeRuleOptions = {},
): Float64Array {
  if (rule === 'linear') return taskArithmetic(tensors, weights);
  const density = options.density;
  if (density === undefined) throw new PeftError(`${rule}: density is required`);
  let pruned: Float64Array[];
  if (rule === 'dare_linear' || rule === 'dare_ties') {
    const random = options.random;
    if (!random) throw new PeftError(`${rule}: a random generator is required`);
    pruned = tensors.map((tensor) => randomPrune(tensor, density, random));
  } else {
    pruned = tensors.map((tensor) => magnitudePrune(tensor, density));
  }
  if (rule === 'dare_linear' || rule === 'magnitude_prune') return taskArithmetic(pruned, weights);
  // TIES elects signs on the unweighted pruned tensors, then averages the weighted ones that agree.
  const mask = majoritySignMask(pruned, options.majoritySignMethod ?? 'total');
  const weighted = pruned.map((tensor, index) => tensor.map((value) => value * weights[index]));
  return disjointMerge(weighted, mask);
}

function sameLength(tensors: readonly Float64Array[]): number {
  const length = tensors[0]?.length ?? 0;
  if (tensors.some((tensor) => tensor.length !== length)) {
    throw new PeftError(`task tensors differ in size: ${tensors.map((tensor) => tensor.length).join(', ')}`);
  }
  return length;
}
