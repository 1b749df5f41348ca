import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Embedding, Linear, manualSeed } from '@peft-ts/core';
import { describeAdapterConformance } from '@peft-ts/core/test';
import { createLoraConfig, type LoraConfig } from '@peft-ts/config';
import { loadLoraModel, saveAdapter } from './adapter-io.js';
import { LoraModel } from './lora-model.js';
import { Sequential, createConvModel, relu } from './testing/test-models.js';

/** Same seed, same base weights: the round trip loads onto an identical fresh base. */
function embeddingMlp(): Sequential {
  manualSeed(3);
  return new Sequential(new Embedding(12, 6), new Linear(6, 8), relu(), new Linear(8, 3));
}
const tokenIds = () => tf.tensor2d([[1, 4, 7], [11, 0, 2]], [2, 3], 'int32');

function convModel(): Sequential {
  manualSeed(4);
  return createConvModel();
}
const images = () => tf.randomNormal([2, 3, 6, 6], 0, 1, 'float32', 12);

async function reloaded(tuner: LoraModel<Sequential>, freshBase: () => Sequential, input: tf.Tensor): Promise<{ run(): tf.Tensor }> {
  const directory = await mkdtemp(join(tmpdir(), 'peft-ts-conformance-'));
  try {
    await saveAdapter(tuner, directory);
    const loaded = await loadLoraModel(freshBase(), directory);
    return { run: () => loaded.model.forward(input) };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function lora(base: () => Sequential, input: () => tf.Tensor, config: Partial<LoraConfig>) {
  return {
    subject: () => {
      const model = base();
      const x = input();
      return {
        tuner: new LoraModel(model, createLoraConfig({ ...config, initLoraWeights: false })),
        secondConfig: createLoraConfig({ ...config, r: 3, loraAlpha: 5, initLoraWeights: false }),
        run: () => model.forward(x),
      };
    },
    roundTrip: (tuner: LoraModel<Sequential>) => reloaded(tuner, base, input()),
  };
}

const onEmbeddingAndLinear = lora(embeddingMlp, tokenIds, { targetModules: ['0', '1'], modulesToSave: ['3'] });
describeAdapterConformance('LoRA (Embedding, Linear, modules_to_save)', onEmbeddingAndLinear.subject, {
  roundTrip: (tuner) => onEmbeddingAndLinear.roundTrip(tuner as LoraModel<Sequential>),
});

const onConv = lora(convModel, images, { targetModules: ['0', '2'] });
describeAdapterConformance('LoRA (Conv2d)', onConv.subject, {
  roundTrip: (tuner) => onConv.roundTrip(tuner as LoraModel<Sequential>),
});
