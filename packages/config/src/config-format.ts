import { z } from 'zod';
import { configErrorFromZod } from './config-error.js';
import { snakeToCamelCase } from './case-conversion.js';
import { describeUnknownKeys } from './key-suggestions.js';
import { parseJsonText } from './json-text.js';

/** A short rendering of an offending value for error messages. */
function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** zod error options whose message states what a field expects, and what it got instead. */
export function expected(description: string): { error: (issue: { input?: unknown }) => string } {
  return {
    error: (issue) =>
      issue.input === undefined
        ? `missing; expected ${description}`
        : `expected ${description}, got ${describeValue(issue.input)}`,
  };
}

/** A strict zod object whose unknown-key error suggests the closest known key. */
export function strictObjectWithSuggestions<Shape extends z.ZodRawShape>(shape: Shape, description: string) {
  const knownKeys = Object.keys(shape);
  const expectation = expected(description);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${describeUnknownKeys(issue.keys, knownKeys)}`
        : expectation.error(issue),
  });
}

/**
 * A cross-field validation, written once against the camelCase config and applied to both the camelCase schema and
 * the snake_case file schema. `report` takes the camelCase field the problem belongs to; `name` renders a field in
 * the key style of the schema being checked, for use inside messages.
 */
export type ConfigCheck<Config> = (
  config: Config,
  report: (field: keyof Config & string, message: string) => void,
  name: (field: keyof Config & string) => string,
) => void;

export function camelCaseRefinement<Config>(check: ConfigCheck<Config>) {
  return (config: Config, context: z.RefinementCtx<Config>): void =>
    check(
      config,
      (field, message) => context.addIssue({ code: 'custom', path: [field], message }),
      (field) => field,
    );
}

export function snakeCaseRefinement<File extends object, Config>(
  check: ConfigCheck<Config>,
  fromFile: (file: File) => Config,
  snakeCaseNames: readonly string[],
) {
  const snakeCaseName = new Map(snakeCaseNames.map((name) => [snakeToCamelCase(name) as string, name]));
  const name = (field: string) => snakeCaseName.get(field) ?? field;
  return (file: File, context: z.RefinementCtx<File>): void =>
    check(
      fromFile(file),
      (field, message) => context.addIssue({ code: 'custom', path: [name(field)], message }),
      name,
    );
}

export interface ReadOptions {
  /** The file (or other origin) being read; every message starts with it. */
  readonly source?: string;
}

export interface LenientReadOptions extends ReadOptions {
  /** Reject keys the format does not define, instead of dropping them with a warning. */
  readonly strict?: boolean;
  /** Receives the warning about dropped keys; defaults to console.warn. */
  readonly onWarning?: (message: string) => void;
}

/** Validates a camelCase config built in code, reporting problems as a ConfigError. */
export function parseWithSchema<Schema extends z.ZodType>(
  schema: Schema,
  value: unknown,
  source?: string,
): z.output<Schema> {
  const result = schema.safeParse(value);
  if (!result.success) throw configErrorFromZod(result.error, source);
  return result.data;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a document in file form. Unless `strict`, top-level keys the schema does not define are dropped with
 * one warning (the schema itself is strict, so in strict mode zod reports them with suggestions).
 */
export function parseFileObject<Schema extends z.ZodObject>(
  schema: Schema,
  value: unknown,
  options: LenientReadOptions,
  unknownKeysNote?: string,
): z.output<Schema> {
  let document = value;
  if (!options.strict && isPlainObject(value)) {
    const knownKeys = Object.keys(schema.shape);
    const unknownKeys = Object.keys(value).filter((key) => !knownKeys.includes(key));
    if (unknownKeys.length > 0) {
      const warn = options.onWarning ?? console.warn;
      const prefix = options.source ? `${options.source}: ` : '';
      const note = unknownKeysNote ? ` (${unknownKeysNote})` : '';
      warn(`${prefix}ignoring unknown keys${note}: ${describeUnknownKeys(unknownKeys, knownKeys)}`);
      document = Object.fromEntries(Object.entries(value).filter(([key]) => knownKeys.includes(key)));
    }
  }
  return parseWithSchema(schema, document, options.source);
}

export function parseFileJson<Schema extends z.ZodObject>(
  schema: Schema,
  text: string,
  options: LenientReadOptions,
  unknownKeysNote?: string,
): z.output<Schema> {
  return parseFileObject(schema, parseJsonText(text, options.source), options, unknownKeysNote);
}
