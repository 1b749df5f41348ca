import { z } from 'zod';
import { expected } from './config-format.js';

// Builders for the field types the config formats share, each with a message that says what is expected.

export const positiveInteger = () => z.int(expected('a positive integer')).min(1, expected('a positive integer'));

export const nonNegativeInteger = () =>
  z.int(expected('a non-negative integer')).min(0, expected('a non-negative integer'));

export const nonNegativeNumber = () => z.number(expected('a number >= 0')).min(0, expected('a number >= 0'));

/** A probability-like number in [0, 1), e.g. a dropout rate. */
export const unitFraction = () =>
  z
    .number(expected('a number in [0, 1)'))
    .min(0, expected('a number in [0, 1)'))
    .lt(1, expected('a number in [0, 1)'));

export const stringList = (description: string) => z.array(z.string(), expected(description));

/** A documented true/false field with its default. */
export const flag = (defaultValue: boolean, description: string) =>
  z.boolean(expected('true or false')).default(defaultValue).meta({ description });

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * The ids under which the JSON Schema documents name shared definitions. They live in a registry of this package's
 * own: zod's global registry refuses an id twice, and a second installed copy of this package would register it again.
 */
export const jsonSchemaIds = z.registry<{ id: string }>();

/**
 * Any JSON value. Written out instead of using z.json() so that the JSON Schemas can refer to it by a readable
 * name rather than a generated one.
 */
const jsonValue: z.ZodType<JsonValue> = z
  .lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]))
  .meta({ description: 'Any JSON value.' })
  .register(jsonSchemaIds, { id: 'JsonValue' });

/** A JSON object with arbitrary members, for dicts PEFT stores without looking inside. */
export const jsonRecord = () => z.record(z.string(), jsonValue, expected('a JSON object'));

/**
 * Matches a word in any letter case. The pattern spells out each letter's two cases rather than using a regex
 * flag, because JSON Schema patterns have no flags.
 */
export function caseInsensitiveWord(word: string): RegExp {
  const letters = Array.from(word, (letter) =>
    letter.toLowerCase() === letter.toUpperCase() ? letter : `[${letter.toUpperCase()}${letter.toLowerCase()}]`,
  );
  return new RegExp(`^${letters.join('')}$`);
}
