import { constants } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { readFully } from './file-io.js';
import {
  LENGTH_PREFIX_BYTES,
  parseHeaderLength,
  parseSafetensorsHeader,
  type SafetensorsMetadata,
  type SafetensorsTensorInfo,
} from './parse-header.js';
import { SafetensorsError } from './safetensors-error.js';
import { decodeTensorData, type SafetensorsTensor } from './tensor-data.js';

/**
 * A safetensors file opened for lazy reading. Opening reads and validates only the header; each tensor is then
 * read on demand from its own byte range, so large checkpoints are never loaded whole.
 *
 * ```ts
 * const file = await SafetensorsFile.open('adapter_model.safetensors');
 * try {
 *   const { dtype, shape, data } = await file.readTensor(file.tensorNames[0]);
 * } finally {
 *   await file.close();
 * }
 * ```
 */
export class SafetensorsFile implements AsyncDisposable {
  readonly path: string;
  /** Size of the whole file in bytes. */
  readonly byteLength: number;
  readonly metadata: SafetensorsMetadata | undefined;
  /** In file order. */
  readonly tensorNames: readonly string[];
  readonly #tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  #handle: FileHandle | undefined;

  private constructor(
    path: string,
    handle: FileHandle,
    byteLength: number,
    metadata: SafetensorsMetadata | undefined,
    tensors: readonly SafetensorsTensorInfo[],
  ) {
    this.path = path;
    this.#handle = handle;
    this.byteLength = byteLength;
    this.metadata = metadata;
    this.#tensors = new Map(tensors.map((info) => [info.name, info]));
    this.tensorNames = Object.freeze(tensors.map((info) => info.name));
  }

  /** Opens and validates `path`; throws a {@link SafetensorsError} if the file is malformed. */
  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      // Both reads are bounded by the file size (checked in parseHeaderLength) before anything is allocated.
      const prefix = new Uint8Array(Math.min(LENGTH_PREFIX_BYTES, size));
      await readFully(handle, prefix, 0, path);
      const headerLength = parseHeaderLength(prefix, size, path);
      const headerBytes = new Uint8Array(headerLength);
      await readFully(handle, headerBytes, LENGTH_PREFIX_BYTES, path);
      const header = parseSafetensorsHeader(headerBytes, size, path);
      return new SafetensorsFile(path, handle, size, header.metadata, header.tensors);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Dtype, shape and location of a tensor, without reading it. */
  info(name: string): SafetensorsTensorInfo {
    const info = this.#tensors.get(name);
    if (!info) {
      throw new SafetensorsError('MISSING_TENSOR', 'no such tensor in this file', { file: this.path, tensor: name });
    }
    return info;
  }

  /** The tensor's stored little-endian bytes, unconverted. */
  async readTensorBytes(name: string): Promise<Uint8Array> {
    const info = this.info(name);
    const handle = this.#handle;
    if (!handle) throw new SafetensorsError('CLOSED', 'file has been closed', { file: this.path, tensor: name });
    if (info.byteLength > constants.MAX_LENGTH) {
      throw new SafetensorsError(
        'TENSOR_TOO_LARGE',
        `${info.byteLength} bytes exceed the largest possible typed array (${constants.MAX_LENGTH})`,
        { file: this.path, tensor: name },
      );
    }
    const bytes = new Uint8Array(info.byteLength);
    await readFully(handle, bytes, info.byteOffset, this.path, name);
    return bytes;
  }

  /** Reads one tensor; F16 and BF16 are widened to float32, other dtypes come back in their own typed array. */
  async readTensor(name: string): Promise<SafetensorsTensor> {
    const bytes = await this.readTensorBytes(name);
    const { dtype, shape } = this.info(name);
    return { dtype, shape, data: decodeTensorData(dtype, bytes) } as SafetensorsTensor;
  }

  /** Releases the file handle. Safe to call more than once. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
