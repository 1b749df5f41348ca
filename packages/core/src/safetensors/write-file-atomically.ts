import { randomUUID } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file through a temporary sibling that is synced and then renamed over `path`, so readers see either the
 * old file or the complete new one, never a partial write. The temporary file is removed if anything fails.
 */
export async function writeFileAtomically(path: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  // Same directory as the target: rename is only atomic within one file system.
  const temporaryPath = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
  const handle = await open(temporaryPath, 'wx');
  try {
    try {
      await write(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporaryPath, path);
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
}
