/**
 * Reads one ~150 MB tensor out of a ~1.2 GB safetensors file and reports how much the process's resident memory
 * grows (peak, sampled) relative to the tensor's size, and the read throughput.
 *
 * Run: npx tsx packages/core/bench/safetensors.bench.ts
 */
import { randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SafetensorsFile } from '../src/safetensors/index.js';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  baseline?: number;
  ratio?: number;
  note?: string;
}

const MEGABYTE = 1_000_000;
const CHUNK_ELEMENTS = 4 * 1024 * 1024;
const TARGET = 'model.layers.2.mlp.down_proj.weight';

/** Four 268 MB filler tensors around one 151 MB target: 1.22 GB in all. */
const LAYOUT: readonly { name: string; shape: [number, number] }[] = [
  { name: 'model.embed_tokens.weight', shape: [8192, 8192] },
  { name: 'model.layers.0.mlp.down_proj.weight', shape: [8192, 8192] },
  { name: 'model.layers.1.mlp.down_proj.weight', shape: [8192, 8192] },
  { name: TARGET, shape: [6144, 6144] },
  { name: 'model.layers.3.mlp.down_proj.weight', shape: [8192, 8192] },
];

/** Element `index` of every tensor in the file: cheap to generate in chunks and to check after reading. */
const valueAt = (index: number): number => (index % 1021) - 510;

/** Streams the file through one reusable 16 MiB chunk, so no tensor is ever held in memory whole. */
async function createFile(path: string): Promise<void> {
  let offset = 0;
  const entries = LAYOUT.map(({ name, shape }) => {
    const byteLength = shape[0] * shape[1] * 4;
    const offsets = `${offset},${offset + byteLength}`;
    offset += byteLength;
    return `${JSON.stringify(name)}:{"dtype":"F32","shape":[${shape.join(',')}],"data_offsets":[${offsets}]}`;
  });
  const json = Buffer.from(`{"__metadata__":{"format":"pt"},${entries.join(',')}}`);
  const header = Buffer.alloc(8 + Math.ceil(json.byteLength / 8) * 8, 0x20);
  header.writeBigUInt64LE(BigInt(header.byteLength - 8), 0);
  json.copy(header, 8);

  const chunk = new Float32Array(CHUNK_ELEMENTS);
  const handle = await open(path, 'w');
  try {
    await handle.write(header);
    for (const { shape } of LAYOUT) {
      const count = shape[0] * shape[1];
      for (let start = 0; start < count; start += CHUNK_ELEMENTS) {
        const length = Math.min(CHUNK_ELEMENTS, count - start);
        for (let index = 0; index < length; index++) chunk[index] = valueAt(start + index);
        await handle.write(new Uint8Array(chunk.buffer, 0, length * 4));
      }
    }
  } finally {
    await handle.close();
  }
}

/** `global.gc` when node runs with --expose-gc; otherwise the flag is enabled now and gc fetched from a fresh context. */
function garbageCollector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export async function runSafetensorsBench(): Promise<BenchResult[]> {
  const path = join(tmpdir(), `peft-ts-bench-${randomUUID()}.safetensors`);
  const collectGarbage = garbageCollector();
  try {
    await createFile(path);
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    const sampler = setInterval(sample, 2);

    const started = performance.now();
    const file = await SafetensorsFile.open(path);
    const tensor = await file.readTensor(TARGET);
    const seconds = (performance.now() - started) / 1000;
    sample();
    clearInterval(sampler);
    const fileBytes = file.byteLength;
    await file.close();

    const tensorBytes = tensor.data.byteLength;
    for (const index of [0, 1, 1020, 1021, tensor.data.length - 1]) {
      if (tensor.data[index] !== valueAt(index)) throw new Error(`wrong value at ${index}: ${tensor.data[index]}`);
    }
    const growth = peak - baseline;
    return [
      {
        name: 'safetensors.read_one_tensor.peak_rss_growth',
        value: growth / MEGABYTE,
        unit: 'MB',
        baseline: tensorBytes / MEGABYTE,
        ratio: growth / tensorBytes,
        note:
          `peak RSS growth over the tensor's size (goal < 1.5x); ${(tensorBytes / MEGABYTE).toFixed(0)} MB tensor ` +
          `of a ${(fileBytes / MEGABYTE).toFixed(0)} MB file`,
      },
      {
        name: 'safetensors.read_one_tensor.throughput',
        value: tensorBytes / MEGABYTE / seconds,
        unit: 'MB/s',
        note: 'open + header validation + read; the file was just written, so it is likely in the page cache',
      },
    ];
  } finally {
    await rm(path, { force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const result of await runSafetensorsBench()) {
    const ratio = result.ratio === undefined ? '' : ` (ratio ${result.ratio.toFixed(3)})`;
    const note = result.note ? ` - ${result.note}` : '';
    console.log(`${result.name}: ${result.value.toFixed(1)} ${result.unit}${ratio}${note}`);
  }
}
