import type { SeededRandom } from '@peft-ts/core';

export type TokenSelectionSettings = {
  /** Sample from the processed distribution instead of taking the arg-max. */
  readonly doSample: boolean;
  readonly temperature: number;
  /** Keep the k highest scores (0: off). */
  readonly topK: number;
  /** Keep the smallest top set whose probability reaches p (1: off). */
  readonly topP: number;
  /** >1 discourages tokens already in the sequence (CTRL's penalty, as transformers applies it). */
  readonly repetitionPenalty: number;
};

/**
 * Picks the next token from one row of logits, applying transformers' processors in its order: repetition penalty,
 * then (when sampling) temperature, top-k, top-p. `scores` is modified in place. Ties in greedy mode go to the lowest
 * id, as torch.argmax does.
 */
export function selectNextToken(
  scores: Float32Array,
  history: Iterable<number>,
  settings: TokenSelectionSettings,
  random: SeededRandom,
): number {
  if (settings.repetitionPenalty !== 1) {
    for (const token of new Set(history)) {
      const score = scores[token];
      scores[token] = score < 0 ? score * settings.repetitionPenalty : score / settings.repetitionPenalty;
    }
  }
  if (!settings.doSample) return argMax(scores);
  if (settings.temperature !== 1) for (let index = 0; index < scores.length; index++) scores[index] /= settings.temperature;
  if (settings.topK > 0 && settings.topK < scores.length) keepTopK(scores, settings.topK);
  if (settings.topP < 1) keepTopP(scores, settings.topP);
  return sample(scores, random);
}

function argMax(scores: Float32Array): number {
  let best = 0;
  for (let index = 1; index < scores.length; index++) if (scores[index] > scores[best]) best = index;
  return best;
}

/** Everything below the k-th largest score becomes −∞ (ties with it are kept, as transformers does). */
function keepTopK(scores: Float32Array, k: number): void {
  const threshold = Float32Array.from(scores).sort()[scores.length - k];
  for (let index = 0; index < scores.length; index++) if (scores[index] < threshold) scores[index] = -Infinity;
}

/** transformers' TopPLogitsWarper: drop the low tail whose cumulative probability is ≤ 1 − p, keeping at least one. */
function keepTopP(scores: Float32Array, p: number): void {
  const probabilities = softmax(scores);
  const ascending = Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b]);
  let cumulative = 0;
  for (let rank = 0; rank < ascending.length - 1; rank++) {
    cumulative += probabilities[ascending[rank]];
    if (cumulative > 1 - p) break;
    scores[ascending[rank]] = -Infinity;
  }
}

function softmax(scores: Float32Array): Float64Array {
  let largest = -Infinity;
  for (const score of scores) largest = Math.max(largest, score);
  const result = new Float64Array(scores.length);
  let total = 0;
  for (let index = 0; index < scores.length; index++) {
    result[index] = Math.exp(scores[index] - largest);
    total += result[index];
  }
  for (let index = 0; index < scores.length; index++) result[index] /= total;
  return result;
}

function sample(scores: Float32Array, random: SeededRandom): number {
  const probabilities = softmax(scores);
  const target = random.next();
  let cumulative = 0;
  let last = 0;
  for (let index = 0; index < probabilities.length; index++) {
    if (probabilities[index] === 0) continue;
    cumulative += probabilities[index];
    last = index;
    if (target < cumulative) return index;
  }
  // Rounding can leave the total a hair under 1; the last possible token then takes the remainder.
  return last;
}
