import type { z } from 'zod';
import { PeftError } from './peft-error.js';
import { brandClass } from './class-brand.js';

/** One problem found in a config document. */
export interface ConfigIssue {
  /** Where the problem is, in the key style of the input (e.g. `layer_replication[1]`); empty for the whole document. */
  readonly path: string;
  readonly message: string;
}

/** A config document could not be read or is invalid. The message has one line per issue. */
export class ConfigError extends PeftError {
  static {
    brandClass(this, '@peft-ts/config:ConfigError');
  }

  constructor(
    readonly issues: readonly ConfigIssue[],
    /** The file (or other origin) the document came from, when the caller named it. */
    readonly source?: string,
  ) {
    super(issues.map((issue) => [source, issue.path, issue.message].filter(Boolean).join(': ')).join('\n'));
  }
}

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Renders a path like `lora.layer_replication[1]`; keys that are not identifiers are quoted (`rank_pattern["a.b"]`). */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let result = '';
  for (const segment of path) {
    if (typeof segment === 'number') result += `[${segment}]`;
    else if (typeof segment === 'string' && identifierPattern.test(segment)) result += result ? `.${segment}` : segment;
    else result += `[${JSON.stringify(String(segment))}]`;
  }
  return result;
}

export function configErrorFromZod(error: z.ZodError, source?: string): ConfigError {
  return new ConfigError(
    error.issues.map((issue) => ({ path: formatIssuePath(issue.path), message: issue.message })),
    source,
  );
}
