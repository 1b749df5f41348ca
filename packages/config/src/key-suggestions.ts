/** Edit distance counting an adjacent transposition as one edit, since `lora_alpah`-style slips are the usual typo. */
function editDistance(left: string, right: string): number {
  const rows = Array.from({ length: left.length + 1 }, (_, row) =>
    Array.from({ length: right.length + 1 }, (_, column) => (row === 0 ? column : column === 0 ? row : 0)),
  );
  for (let row = 1; row <= left.length; row += 1) {
    for (let column = 1; column <= right.length; column += 1) {
      const substitution = left[row - 1] === right[column - 1] ? 0 : 1;
      rows[row][column] = Math.min(
        rows[row - 1][column] + 1,
        rows[row][column - 1] + 1,
        rows[row - 1][column - 1] + substitution,
      );
      if (row > 1 && column > 1 && left[row - 1] === right[column - 2] && left[row - 2] === right[column - 1]) {
        rows[row][column] = Math.min(rows[row][column], rows[row - 2][column - 2] + 1);
      }
    }
  }
  return rows[left.length][right.length];
}

/** Ignores case and word separators, so `loraAlpha` and `LORA-ALPHA` both point at `lora_alpha`. */
function wordsOnly(key: string): string {
  return key.toLowerCase().replace(/[_\-\s]/g, '');
}

/**
 * The known key the unknown one was most likely meant to be, if any. Only one slip is allowed (two in long keys),
 * so that genuinely different keys of newer PEFT versions (`use_qalora`, `lora_bias`) are not taken for typos of
 * `use_rslora` or `bias`.
 */
export function suggestKey(key: string, knownKeys: readonly string[]): string | undefined {
  const sameWords = knownKeys.find((known) => wordsOnly(known) === wordsOnly(key));
  if (sameWords !== undefined) return sameWords;
  const limit = key.length >= 12 ? 2 : 1;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const known of knownKeys) {
    const distance = editDistance(key.toLowerCase(), known.toLowerCase());
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return best;
}

/** `"lora_alpah" (did you mean "lora_alpha"?), "peft_version"` */
export function describeUnknownKeys(keys: readonly string[], knownKeys: readonly string[]): string {
  return keys
    .map((key) => {
      const suggestion = suggestKey(key, knownKeys);
      return suggestion === undefined ? JSON.stringify(key) : `${JSON.stringify(key)} (did you mean ${JSON.stringify(suggestion)}?)`;
    })
    .join(', ');
}
