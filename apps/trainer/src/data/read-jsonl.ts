import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DataFormatError } from './data-format-error.js';

export type JsonlLine = {
  readonly value: unknown;
  /** 1-based, counting blank lines. */
  readonly lineNumber: number;
  /** `path:line`, the prefix of messages about this line. */
  readonly location: string;
};

/** Streams the JSON values of a JSONL file line by line, skipping blank lines. */
export async function* readJsonl(path: string): AsyncGenerator<JsonlLine> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNumber = 0;
  try {
    for await (const line of lines) {
      lineNumber += 1;
      // An editor's byte order mark is not part of the first record.
      const text = lineNumber === 1 ? line.replace(/^\uFEFF/, '') : line;
      if (text.trim() === '') continue;
      const location = `${path}:${lineNumber}`;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new DataFormatError(`${location}: invalid JSON (${(error as Error).message})`);
      }
      yield { value, lineNumber, location };
    }
  } catch (error) {
    if (error instanceof DataFormatError) throw error;
    throw new DataFormatError(`${path}: cannot be read (${(error as Error).message})`);
  } finally {
    // Closing readline leaves its input open; a reader that stops early must not keep the file open.
    lines.close();
    input.destroy();
  }
}
