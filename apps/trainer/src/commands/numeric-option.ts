import { InvalidArgumentError } from 'commander';

/** The kinds of number a command-line option takes, each with the words its error uses. */
const numberKinds = {
  positiveInteger: { expected: 'an integer ≥ 1', accepts: (value: number) => Number.isInteger(value) && value >= 1 },
  nonNegativeInteger: { expected: 'an integer ≥ 0', accepts: (value: number) => Number.isInteger(value) && value >= 0 },
  positiveNumber: { expected: 'a positive number', accepts: (value: number) => value > 0 },
  nonNegativeNumber: { expected: 'a number ≥ 0', accepts: (value: number) => value >= 0 },
  fraction: { expected: 'a number in [0, 1)', accepts: (value: number) => value >= 0 && value < 1 },
  probability: { expected: 'a number in (0, 1]', accepts: (value: number) => value > 0 && value <= 1 },
  zeroOrAboveOne: { expected: '0 (off) or a number > 1', accepts: (value: number) => value === 0 || value > 1 },
  stepCount: { expected: '-1 or an integer ≥ 1', accepts: (value: number) => value === -1 || (Number.isInteger(value) && value >= 1) },
} as const;

export type NumberKind = keyof typeof numberKinds;

/** A number in decimal notation, else NaN: `Number('')` and `Number(' ')` are 0, and hex or binary forms are numbers too. */
export function parseDecimal(text: string): number {
  return /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(text) ? Number(text) : Number.NaN;
}

/**
 * A commander argument parser for one kind of number. Commander puts the option's flag in front of the message
 * (`option '--max-steps <steps>' argument 'abc' is invalid. expected an integer ≥ 1`), so every numeric option of
 * every command reports the flag it came from and what it takes. Only decimal notation is accepted.
 */
export function numberOption(kind: NumberKind): (text: string) => number {
  const { expected, accepts } = numberKinds[kind];
  return (text) => {
    const value = parseDecimal(text);
    if (!Number.isFinite(value) || !accepts(value)) throw new InvalidArgumentError(`expected ${expected}`);
    return value;
  };
}
