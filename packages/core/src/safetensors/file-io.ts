import type { FileHandle } from 'node:fs/promises';
import { SafetensorsError } from './safetensors-error.js';

/** Node rejects single reads and writes above 2 GiB, so large ranges go through in pieces. */
const CHUNK_BYTES = 256 * 1024 * 1024;

/** Fills `target` from `position`, failing (rather than looping forever) if the file ends first. */
export async function readFully(
  handle: FileHandle,
  target: Uint8Array,
  position: number,
  source: string,
  tensor?: string,
): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(CHUNK_BYTES, target.byteLength - done);
    const { bytesRead } = await handle.read(target, done, length, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(
        'TRUNCATED',
        `file ended at byte ${position + done} while reading ${target.byteLength} bytes from ${position}`,
        { file: source, tensor },
      );
    }
    done += bytesRead;
  }
}

/** Appends all of `bytes` at the handle's current position. */
export async function writeFully(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(CHUNK_BYTES, bytes.byteLength - done));
    done += bytesWritten;
  }
}
