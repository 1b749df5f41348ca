import { createReadStream } from 'node:fs';
import { DataFormatError } from './data-format-error.js';

export type JsonlLine = {
  readonly value: unknown;
  /** 1-based, counting blank lines. */
  readonly lineNumber: number;
  /** `path:line`, the prefix of messages about this line. */
  readonly location: string;
};

/** The raw bytes of each `\n`-terminated line (a trailing `\r` included), read chunk by chunk. */
async function* byteLines(path: string): AsyncGenerator<Buffer> {
  const input = createReadStream(path);
  let pending: Buffer[] = [];
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let newline = chunk.indexOf(0x0a); newline !== -1; newline = chunk.indexOf(0x0a, start)) {
        pending.push(chunk.subarray(start, newline));
        yield pending.length === 1 ? pending[0] : Buffer.concat(pending);
        pending = [];
        start = newline + 1;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
    if (pending.length > 0) yield Buffer.concat(pending);
  } finally {
    // A reader that stops early must not keep the file open.
    input.destroy();
  }
}

/**
 * Decodes a line as strict UTF-8: a lossy decoder would turn bad bytes into U+FFFD and train on them silently.
 * On failure, finds the offending byte by feeding the line one byte at a time (only on this error path).
 */
function decodeLine(bytes: Buffer, location: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    // Where the character being decoded started: a bad byte after a lead byte is that lead byte's fault.
    let characterStart: number | null = null;
    for (let index = 0; index < bytes.length; index++) {
      try {
        const decoded = decoder.decode(bytes.subarray(index, index + 1), { stream: true });
        characterStart = decoded === '' ? (characterStart ?? index) : null;
      } catch {
        const at = characterStart ?? index;
        const byte = bytes[at].toString(16).padStart(2, '0');
        throw new DataFormatError(`${location}: invalid UTF-8 (byte 0x${byte} at byte ${at + 1} of the line); the file must be UTF-8`);
      }
    }
    throw new DataFormatError(`${location}: invalid UTF-8 (the line ends inside a multi-byte character); the file must be UTF-8`);
  }
}

/** Streams the JSON values of a JSONL file line by line, skipping blank lines. */
export async function* readJsonl(path: string): AsyncGenerator<JsonlLine> {
  let lineNumber = 0;
  try {
    for await (const bytes of byteLines(path)) {
      lineNumber += 1;
      const location = `${path}:${lineNumber}`;
      const line = decodeLine(bytes, location);
      // An editor's byte order mark is not part of the first record; Windows line ends are.
      const text = (lineNumber === 1 ? line.replace(/^\uFEFF/, '') : line).replace(/\r$/, '');
      if (text.trim() === '') continue;
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
  }
}
