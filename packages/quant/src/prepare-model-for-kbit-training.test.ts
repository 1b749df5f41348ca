import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, ModuleList, type DecoderLayer, type DecoderModel } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { beforeAll, describe, expect, it } from 'vitest';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';
import { prepareModelForKbitTraining } from './prepare-model-for-kbit-training.js';

class Block extends Module implements DecoderLayer {
  readonly kind = 'block';
  constructor(
    public layerIndex: number,
    projection: Module,
  ) {
    super();
    this.registerModule('proj', projection);
    this.registerModule('output', new Linear(8, 8));
  }
  cloneSharingParameters(): DecoderLayer {
    throw new Error('not used');
  }
  forward(): never {
    throw new Error('not used');
  }
}

/** A two-block decoder whose projections come from `projection`, plus a float head. */
class TinyDecoder extends Module implements DecoderModel {
  readonly kind = 'tiny_decoder';
  readonly decoderLayersPath = 'layers';
  gradientCheckpointing = false;
  constructor(projection: () => Module) {
    super();
    this.registerModule('layers', new ModuleList([new Block(0, projection()), new Block(1, projection())]));
    this.registerModule('lm_head', new Linear(8, 16));
  }
  decoderLayers(): ModuleList<DecoderLayer> {
    return this.child('layers');
  }
  setDecoderLayers(): void {
    throw new Error('not used');
  }
  forward(): never {
    throw new Error('not used');
  }
}

const weight = () => tf.randomNormal([8, 64], 0, 0.1, 'float32', 1);

class TwoLayers extends Module {
  readonly kind = 'two_layers';
  constructor() {
    super();
    this.registerModule('quantized', Linear4bit.fromWeight(tf.ones([4, 64])));
    this.registerModule('plain', new Linear(64, 4));
  }
  forward(): never {
    throw new Error('not used');
  }
}

describe('prepareModelForKbitTraining', () => {
  beforeAll(() => initBackend('cpu'));

  it.each([
    ['4-bit', () => Linear4bit.fromWeight(weight(), { quantType: 'nf4', compressStatistics: true, bias: tf.zeros([8]) })],
    ['8-bit', () => Linear8bitLt.fromWeight(weight(), { threshold: 6, bias: tf.zeros([8]) })],
  ] as const)('%s model: freezes every parameter and turns on gradient checkpointing', (_, projection) => {
    const model = new TinyDecoder(projection);
    expect(model.namedParameters().some(([, parameter]) => parameter.requiresGrad)).toBe(true);
    expect(prepareModelForKbitTraining(model)).toBe(model);
    expect(model.namedParameters({ includeShared: true }).filter(([, parameter]) => parameter.requiresGrad)).toEqual([]);
    expect(model.gradientCheckpointing).toBe(true);
    model.dispose();
  });

  it('accepts PEFT\'s gradient_checkpointing_kwargs (useReentrant has no effect) and refuses what it cannot honour', () => {
    for (const useReentrant of [true, false]) {
      const model = new TinyDecoder(() => Linear4bit.fromWeight(weight()));
      prepareModelForKbitTraining(model, { useGradientCheckpointing: true, gradientCheckpointingKwargs: { useReentrant, preserveRngState: true } });
      expect(model.gradientCheckpointing).toBe(true);
      model.dispose();
    }
    const model = new TinyDecoder(() => Linear4bit.fromWeight(weight()));
    expect(() => prepareModelForKbitTraining(model, { gradientCheckpointingKwargs: { preserveRngState: false } })).toThrow(
      /gradientCheckpointingKwargs: preserveRngState: false is not supported/,
    );
    const snakeCase = { use_reentrant: false } as never;
    expect(() => prepareModelForKbitTraining(model, { gradientCheckpointingKwargs: snakeCase })).toThrow(
      "gradientCheckpointingKwargs: 'use_reentrant' is not one of useReentrant, preserveRngState",
    );
    expect(() => prepareModelForKbitTraining(model, { gradientCheckpointingKwargs: { useReentrant: 'no' as never } })).toThrow(
      /useReentrant: expected a boolean, got "no"/,
    );
    model.dispose();
  });

  it('leaves checkpointing off when not requested', () => {
    const model = new TinyDecoder(() => Linear4bit.fromWeight(weight()));
    prepareModelForKbitTraining(model, { useGradientCheckpointing: false });
    expect(model.gradientCheckpointing).toBe(false);
    model.dispose();
  });

  it('only freezes a model without quantized layers (as PEFT)', () => {
    const model = new TinyDecoder(() => new Linear(64, 8));
    prepareModelForKbitTraining(model);
    expect(model.namedParameters().every(([, parameter]) => !parameter.requiresGrad)).toBe(true);
    expect(model.gradientCheckpointing).toBe(false);
    model.dispose();
  });

  it('refuses checkpointing on a quantized model that has none', () => {
    const model = new TwoLayers();
    expect(() => prepareModelForKbitTraining(model)).toThrow(/'two_layers' model has no gradient checkpointing/);
    expect(prepareModelForKbitTraining(model, { useGradientCheckpointing: false })).toBe(model);
    expect(model.parameters().every((parameter) => !parameter.requiresGrad)).toBe(true);
    model.dispose();
  });
});
