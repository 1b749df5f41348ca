/** `bnb_4bit_compute_dtype` → `bnb4bitComputeDtype`, at the type level. */
export type SnakeToCamelCase<Name extends string> = Name extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<SnakeToCamelCase<Tail>>}`
  : Name;

export type CamelCaseKeys<Value> = {
  [Key in keyof Value as Key extends string ? SnakeToCamelCase<Key> : Key]: Value[Key];
};

/** `lora_alpha` → `loraAlpha`; `load_in_4bit` → `loadIn4bit`. */
export function snakeToCamelCase<Name extends string>(name: Name): SnakeToCamelCase<Name> {
  return name.replace(/_([a-z0-9])/g, (_, character: string) => character.toUpperCase()) as SnakeToCamelCase<Name>;
}

/** Renames the top-level keys of an object (or zod shape) from snake_case to camelCase; values are untouched. */
export function camelCaseKeys<Value extends object>(value: Value): CamelCaseKeys<Value> {
  return Object.fromEntries(
    Object.entries(value).map(([key, member]) => [snakeToCamelCase(key), member]),
  ) as CamelCaseKeys<Value>;
}

/**
 * The inverse of camelCaseKeys. It needs the snake_case names because the camelCase form loses where digits
 * started a word (`loadIn4bit` could be `load_in4bit`); members left undefined are omitted.
 */
export function snakeCaseKeys<Value extends object>(
  value: CamelCaseKeys<Value>,
  snakeCaseNames: readonly (keyof Value & string)[],
): Value {
  const result: Record<string, unknown> = {};
  const members = value as Record<string, unknown>;
  for (const name of snakeCaseNames) {
    const member = members[snakeToCamelCase(name)];
    if (member !== undefined) result[name] = member;
  }
  return result as Value;
}
