import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { createTrainingConfig, type TrainingConfigInput } from '@peft-ts/config';
import { manualSeed, readTensorFile, writeTensorFile } from '@peft-ts/core';
import { SeededRandom } from '@peft-ts/core';
import type { TokenizedExample } from '../../data/tokenized-example.js';
import { trainLoop, type TrainLoopOptions, type TrainLoopResult } from '../train-loop.js';
import type { TrainableModel } from '../trainable-model.js';
import { ToyLanguageModel } from './toy-language-model.js';

const vocabularySize = 12;
const padTokenId = 0;

/** Counting sequences (start, start + stride, … mod the vocabulary) of 3 to 8 tokens: learnable, varied lengths. */
export function toyExamples(count: number, seed: number): TokenizedExample[] {
  const random = new SeededRandom(seed);
  return Array.from({ length: count }, () => {
    const start = 1 + random.nextInt(vocabularySize - 1);
    const stride = 1 + random.nextInt(2);
    const length = 3 + random.nextInt(6);
    const inputIds = Array.from({ length }, (_, index) => 1 + ((start - 1 + index * stride) % (vocabularySize - 1)));
    return { inputIds, labels: inputIds, attentionMask: inputIds.map(() => 1) };
  });
}

export type ToyTrainingOptions = Partial<Pick<TrainLoopOptions, 'resumeFrom' | 'signal' | 'onLog' | 'onStep' | 'onResume' | 'validation'>> & {
  readonly outputDir: string;
  /** Training settings beyond the toy defaults (snake_case names in their camelCase form). */
  readonly settings?: Partial<TrainingConfigInput>;
  /** Wraps the model, e.g. to corrupt its loss in a test. */
  readonly wrapModel?: (model: ToyLanguageModel) => TrainableModel;
};

export type ToyTrainingResult = TrainLoopResult & {
  /** The trained weights after the run, by name. */
  readonly weights: Map<string, Float32Array>;
};

/** Builds the toy model from the seed and trains it on toy data with adapter files holding all its weights. */
export async function runToyTraining(options: ToyTrainingOptions): Promise<ToyTrainingResult> {
  const settings = createTrainingConfig({
    model: 'toy',
    data: 'toy.jsonl',
    outputDir: options.outputDir,
    perDeviceTrainBatchSize: 4,
    gradientAccumulationSteps: 2,
    learningRate: 0.05,
    warmupSteps: 2,
    lrSchedulerType: 'cosine',
    weightDecay: 0.01,
    maxGradNorm: 1,
    loggingSteps: 1,
    seed: 7,
    ...options.settings,
  });
  manualSeed(settings.seed);
  const model = new ToyLanguageModel(vocabularySize, 8, 0.1);
  const adapterFile = (directory: string) => join(directory, 'adapter_model.safetensors');
  try {
    const result = await trainLoop({
      model: options.wrapModel?.(model) ?? model,
      settings,
      training: toyExamples(18, 1),
      validation: options.validation ?? toyExamples(5, 2),
      padTokenId,
      writeAdapter: (directory) => writeTensorFile(adapterFile(directory), model.stateDict()),
      readAdapter: async (directory) => {
        const weights = await readTensorFile(adapterFile(directory));
        try {
          model.loadStateDict(weights, { source: adapterFile(directory) });
        } finally {
          tf.dispose([...weights.values()]);
        }
      },
      resumeFrom: options.resumeFrom,
      signal: options.signal,
      onLog: options.onLog,
      onStep: options.onStep,
      onResume: options.onResume,
    });
    const weights = new Map([...model.stateDict()].map(([name, tensor]) => [name, tensor.dataSync() as Float32Array]));
    return { ...result, weights };
  } finally {
    model.dispose();
  }
}
