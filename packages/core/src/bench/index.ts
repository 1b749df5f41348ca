/** One figure of a benchmark (`pnpm bench` prints them as a table; `--json` writes them). */
export type BenchResult = {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** What `value` is compared with, measured in the same process and unit. */
  readonly baseline?: number;
  /** value / baseline. */
  readonly ratio?: number;
  readonly note?: string;
};
