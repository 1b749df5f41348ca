import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Linear, Module, manualSeed, type AdapterTargetModel } from '@peft-ts/core';
import { describeAdapterConformance } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { LoraModel, loadLoraModel, saveAdapter } from '@peft-ts/lora';
import { doraMethod } from './dora-method.js';

/** Two layers of one kind with a ReLU between, for DoRA's linear and conv geometries. */
class TwoLayers extends Module implements AdapterTargetModel {
  readonly kind = 'two_layers';
  constructor(...layers: [Module, Module]) {
    super();
    layers.forEach((layer, index) => this.registerModule(`layer${index}`, layer));
  }
  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      this.namedChildren().reduce((hidden, [, layer], index) => {
        const output = (layer as Linear).forward(hidden);
        return index === 0 ? tf.relu(output) : output;
      }, input),
    );
  }
}

// Same seed, same base weights: the round trip loads onto an identical fresh base.
const cases = [
  {
    name: 'DoRA (Linear)',
    base: () => (manualSeed(5), new TwoLayers(new Linear(6, 7), new Linear(7, 4))),
    input: () => tf.randomNormal([3, 6], 0, 1, 'float32', 13),
  },
  {
    name: 'DoRA (Conv2d)',
    base: () => (manualSeed(6), new TwoLayers(new Conv2d(3, 5, 3), new Conv2d(5, 2, 3))),
    input: () => tf.randomNormal([2, 3, 6, 6], 0, 1, 'float32', 14),
  },
];

for (const { name, base, input } of cases) {
  const config = (r: number) => createLoraConfig({ targetModules: ['layer0', 'layer1'], r, loraAlpha: 2 * r, initLoraWeights: false, useDora: true });
  describeAdapterConformance(
    name,
    () => {
      const model = base();
      const x = input();
      return { tuner: new LoraModel(model, config(2), { method: doraMethod }), secondConfig: config(3), run: () => model.forward(x) };
    },
    {
      roundTrip: async (tuner) => {
        const directory = await mkdtemp(join(tmpdir(), 'peft-ts-dora-conformance-'));
        try {
          await saveAdapter(tuner as LoraModel, directory);
          const loaded = await loadLoraModel(base(), directory, { method: doraMethod });
          const x = input();
          return { run: () => loaded.model.forward(x) };
        } finally {
          await rm(directory, { recursive: true, force: true });
        }
      },
    },
  );
}
