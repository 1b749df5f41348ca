/**
 * The native GatherV2, UnsortedSegmentSum and Conv2D kernels against tfjs-backend-cpu's in the same process: an
 * embedding lookup of 1024 ids in an [8192, 512] table and its gradient (the segment sum of 1024 rows into 8192, on
 * native alone: cpu's would take many minutes),
 * and a 3×3 convolution at a small UNet block's shape with its two gradient kernels (input and filter).
 * `npx tsx packages/backend-native/bench/gather-conv.bench.ts` (PEFT_TS_THREADS sets the native thread count).
 */
import * as tf from '@tensorflow/tfjs-core';
import { pathToFileURL } from 'node:url';
import { NATIVE_BACKEND_NAME, nativeBackendStatus, registerNativeBackend } from '../src/index.js';

/** One row of `pnpm bench`'s table (@peft-ts/core/bench's BenchResult; this package sits below core). */
type BenchResult = { name: string; value: number; unit: string; baseline?: number; ratio?: number; note?: string };

const VOCABULARY = 8192;
const WIDTH = 512;
const IDS = 1024;
const CONV_INPUT: [number, number, number, number] = [1, 64, 64, 32];
const CONV_FILTER: [number, number, number, number] = [3, 3, 32, 32];
const CONV_OUTPUT: [number, number, number, number] = [1, 64, 64, 32];
// cpu's UnsortedSegmentSum makes one masked pass over x per segment (~0.2 s each at [1024, 512] on a loaded 2-core
// machine): it is compared at this many segments; the embedding's 8192 are timed on native alone.
const CPU_SEGMENTS = 32;

/** Best seconds of `rounds` runs, the result read back each time, after one warm-up unless a single run is asked for. */
function bestSeconds(run: () => tf.Tensor | tf.Tensor[], rounds: number): number {
  let best = Infinity;
  for (let round = rounds === 1 ? 1 : 0; round <= rounds; round++) {
    const start = performance.now();
    const result = tf.tidy(run);
    for (const tensor of [result].flat()) tensor.dataSync();
    tf.dispose(result);
    if (round > 0) best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

/** `run` over the same inputs on native and on cpu (cpuRounds 1 for cpu's slow segment sum: no warm-up). */
function compare<T extends tf.Tensor[]>(name: string, inputs: () => T, run: (...tensors: T) => tf.Tensor | tf.Tensor[], cpuRounds: number, note: string): BenchResult {
  const timeOn = (backend: string, rounds: number) => {
    tf.setBackend(backend);
    const tensors = inputs();
    const seconds = bestSeconds(() => run(...tensors), rounds);
    tf.dispose(tensors);
    return seconds;
  };
  const value = timeOn(NATIVE_BACKEND_NAME, 5);
  const baseline = timeOn('cpu', cpuRounds);
  return { name: `${name} native / cpu`, value, unit: 's', baseline, ratio: value / baseline, note };
}

export async function runGatherConvBench(): Promise<BenchResult[]> {
  if (!nativeBackendStatus().available) return [];
  const { threads } = registerNativeBackend();
  const note = `${threads} native thread${threads === 1 ? '' : 's'}`;
  const embedding = (): [tf.Tensor, tf.Tensor1D] => [tf.randomNormal([VOCABULARY, WIDTH], 0, 1, 'float32', 2), tf.randomUniform([IDS], 0, VOCABULARY, 'int32', 1) as tf.Tensor1D];
  const rows = (segments: number) => (): [tf.Tensor, tf.Tensor1D] => [
    tf.randomNormal([IDS, WIDTH], 0, 1, 'float32', 3),
    tf.randomUniform([IDS], 0, segments, 'int32', 1) as tf.Tensor1D,
  ];
  type Convolution = [x: tf.Tensor4D, filter: tf.Tensor4D, dy: tf.Tensor4D];
  const image = (): Convolution => [
    tf.randomNormal(CONV_INPUT, 0, 1, 'float32', 4),
    tf.randomNormal(CONV_FILTER, 0, 0.1, 'float32', 5),
    tf.randomNormal(CONV_OUTPUT, 0, 1, 'float32', 6),
  ];
  const geometry = { strides: 1, pad: 'same', dataFormat: 'NHWC' } as const;
  const conv = `conv2d 3×3 same [${CONV_INPUT}] → ${CONV_FILTER[3]} channels`;
  const segmentSum = (segments: number) => (values: tf.Tensor, indices: tf.Tensor1D) => tf.unsortedSegmentSum(values, indices, segments);
  tf.setBackend(NATIVE_BACKEND_NAME);
  const embeddingRows = rows(VOCABULARY)();
  const embeddingGradient = bestSeconds(() => segmentSum(VOCABULARY)(...embeddingRows), 5);
  tf.dispose(embeddingRows);
  const results = [
    compare(`gather [${VOCABULARY}, ${WIDTH}] × ${IDS} ids`, embedding, (table, indices) => tf.gather(table, indices), 5, note),
    compare(`unsortedSegmentSum [${IDS}, ${WIDTH}] into ${CPU_SEGMENTS}`, rows(CPU_SEGMENTS), segmentSum(CPU_SEGMENTS), 1, note),
    { name: `unsortedSegmentSum [${IDS}, ${WIDTH}] into ${VOCABULARY} (native)`, value: embeddingGradient, unit: 's', note: `${note}; cpu's time grows with the segments: see the row above` },
    compare<Convolution>(conv, image, (x, filter) => tf.conv2d(x, filter, 1, 'same'), 3, note),
    compare<Convolution>(`${conv}, input gradient`, image, (_, filter, dy) =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...geometry, inputShape: CONV_INPUT }) as tf.Tensor, 3, note),
    compare<Convolution>(`${conv}, filter gradient`, image, (x, _, dy) =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...geometry, filterShape: CONV_FILTER }) as tf.Tensor, 3, note),
  ];
  tf.setBackend(NATIVE_BACKEND_NAME);
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) console.table(await runGatherConvBench());
