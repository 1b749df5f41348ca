import { PeftError } from '../errors.js';

/** Which modules an adapter config selects, with PEFT 0.10's matching rules. */
export type TargetSelection = {
  /** A list (exact name or `.suffix` match), a regex string (full match), or null for the model default. */
  readonly targetModules: readonly string[] | string | null;
  readonly layersToTransform?: readonly number[] | number | null;
  readonly layersPattern?: readonly string[] | string | null;
};

/** Python `re.fullmatch`: the pattern must cover the whole key. */
export function fullMatch(pattern: string, text: string): boolean {
  return new RegExp(`^(?:${pattern})$`).test(text);
}

/**
 * Python `re.match`: anchored at the start of the text only. The group keeps a top-level `|` in the pattern
 * anchored too, as Python anchors the whole pattern (a bare `^` would bind to the first alternative alone).
 */
export function matchFromStart(pattern: string, text: string): RegExpExecArray | null {
  return new RegExp(`^(?:${pattern})`).exec(text);
}

/**
 * The decoder-layer index of a module key for `layers_to_transform`: after `.<pattern>.<digits>.`
 * (the first pattern that matches), or with no pattern after the last `.<name>.<digits>.`.
 */
export function layerIndexOf(key: string, layersPattern: readonly string[] | string | null | undefined): number | null {
  const patterns = typeof layersPattern === 'string' ? (layersPattern ? [layersPattern] : []) : (layersPattern ?? []);
  if (patterns.length === 0) return layerIndexFrom(matchFromStart('.*\\.[^.]*\\.(\\d+)\\.', key), key, '');
  for (const pattern of patterns) {
    const match = matchFromStart(`.*\\.${pattern}\\.(\\d+)\\.`, key);
    if (match) return layerIndexFrom(match, key, pattern);
  }
  return null;
}

function layerIndexFrom(match: RegExpExecArray | null, key: string, pattern: string): number | null {
  if (!match) return null;
  // An alternative of the pattern can match without reaching the index group (Python then fails on int(None)).
  if (match[1] === undefined) {
    throw new PeftError(
      `layers_pattern '${pattern}': matched '${key}' without a layer index; group alternatives, e.g. '(?:${pattern})'`,
    );
  }
  return Number.parseInt(match[1], 10);
}

/**
 * PEFT 0.10 `check_target_module_exists`: a regex string must fully match and ignores the layer
 * filter; an exact list entry matches without the filter; a `.suffix` match then applies
 * `layers_to_transform` (an empty list means no filter).
 */
export function isTargetModule(key: string, selection: TargetSelection): boolean {
  const { targetModules, layersToTransform } = selection;
  if (targetModules === null) return false;
  if (typeof targetModules === 'string') return fullMatch(targetModules, key);
  if (targetModules.includes(key)) return true;
  const found = targetModules.some((target) => key.endsWith(`.${target}`));
  if (!found) return false;
  const filter = typeof layersToTransform === 'number' ? [layersToTransform] : (layersToTransform ?? []);
  if (filter.length === 0) return true;
  const index = layerIndexOf(key, selection.layersPattern);
  return index !== null && filter.includes(index);
}
