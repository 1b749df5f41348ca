import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backend/index.js';
import { ModulePathError, StateDictError } from './errors.js';
import { Linear } from './layers/linear.js';
import { RMSNorm } from './layers/rms-norm.js';
import { countParameters, markTrainableByName } from './parameter-count.js';
import { Module, ModuleList } from './module.js';
import { Parameter, copyParameter } from './parameter.js';

class Block extends Module {
  readonly kind = 'block';
  constructor(meta = false) {
    super();
    this.registerModule('proj', new Linear(4, 3, { meta }));
    this.registerModule('norm', new RMSNorm(3, 1e-6, { meta }));
  }
  forward(input: tf.Tensor): tf.Tensor {
    return this.child<RMSNorm>('norm').forward(this.child<Linear>('proj').forward(input));
  }
}

class Stack extends Module {
  readonly kind = 'stack';
  constructor(count: number, meta = false) {
    super();
    this.registerModule('layers', new ModuleList(Array.from({ length: count }, () => new Block(meta))));
  }
  forward(input: tf.Tensor): tf.Tensor {
    let hidden = input;
    for (const layer of this.child<ModuleList<Block>>('layers')) hidden = layer.forward(hidden);
    return hidden;
  }
}

describe('Module', () => {
  beforeAll(() => initBackend('cpu'));

  it('names parameters and modules with dotted PyTorch paths', () => {
    const model = new Stack(2);
    expect(model.namedParameters().map(([name]) => name)).toEqual([
      'layers.0.proj.weight',
      'layers.0.proj.bias',
      'layers.0.norm.weight',
      'layers.1.proj.weight',
      'layers.1.proj.bias',
      'layers.1.norm.weight',
    ]);
    expect(model.namedModules().map(([name]) => name)).toEqual([
      '',
      'layers',
      'layers.0',
      'layers.0.proj',
      'layers.0.norm',
      'layers.1',
      'layers.1.proj',
      'layers.1.norm',
    ]);
    expect(model.getSubmodule('layers.1.proj')).toBeInstanceOf(Linear);
    expect(() => model.getSubmodule('layers.2.proj')).toThrow(ModulePathError);
  });

  it('replaces a module by path and forward uses the replacement', () => {
    const model = new Stack(1);
    const input = tf.ones([2, 4]);
    const replacement = new Linear(4, 3);
    model.setSubmodule('layers.0.proj', replacement);
    expect(model.getSubmodule('layers.0.proj')).toBe(replacement);
    const expected = model.getSubmodule('layers.0.norm').forward(replacement.forward(input) as never) as tf.Tensor;
    expect(Array.from(model.forward(input).dataSync())).toEqual(Array.from(expected.dataSync()));
    expect(() => model.setSubmodule('layers.0.nope', replacement)).toThrow(/no module at 'layers.0.nope'/);
  });

  it('counts shared parameters once, lists them under every name in the state dict', () => {
    const model = new Stack(2);
    const shared = model.getSubmodule('layers.0.proj').parameter('weight');
    model.getSubmodule('layers.1.proj').setParameter('weight', shared);
    expect(countParameters(model).total).toBe(2 * (12 + 3 + 3) - 12);
    expect([...model.stateDict().keys()]).toHaveLength(6);
    expect(model.stateDict().get('layers.1.proj.weight')).toBe(shared.value);
  });

  it('loads a state dict, listing every missing, unexpected and mis-shaped key', () => {
    const model = new Stack(1);
    const good = new Map([...model.stateDict()].map(([key, value]) => [key, tf.onesLike(value)]));
    model.loadStateDict(good);
    expect(Array.from(model.getSubmodule('layers.0.proj').parameter('weight').value.dataSync())).toEqual(new Array(12).fill(1));

    const bad = new Map(good);
    bad.delete('layers.0.norm.weight');
    bad.set('layers.0.proj.bias', tf.ones([4]));
    bad.set('layers.0.extra', tf.ones([1]));
    let error: unknown;
    try {
      model.loadStateDict(bad, { source: 'model.safetensors' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(StateDictError);
    const stateError = error as StateDictError;
    expect(stateError.message).toMatch(/^model\.safetensors: /);
    expect(stateError.missingKeys).toEqual(['layers.0.norm.weight']);
    expect(stateError.unexpectedKeys).toEqual(['layers.0.extra']);
    expect(stateError.mismatchedKeys[0]).toContain('layers.0.proj.bias: expected float32 [3], got float32 [4]');
    // Nothing was written by the failed load.
    expect(Array.from(model.getSubmodule('layers.0.proj').parameter('bias').value.dataSync())).toEqual([1, 1, 1]);
    expect(model.loadStateDict(new Map([['layers.0.proj.bias', tf.zeros([3])]]), { strict: false }).missingKeys).toHaveLength(2);
  });

  it('builds shape-only models that count parameters without allocating', () => {
    const before = tf.memory().numTensors;
    const model = new Stack(3, true);
    expect(tf.memory().numTensors).toBe(before);
    expect(countParameters(model)).toEqual({ total: 3 * 18, trainable: 3 * 18, bytes: 3 * 18 * 4 });
    expect(() => model.getSubmodule('layers.0.proj').parameter('weight').value).toThrow(/shape-only/);
    const weight = model.getSubmodule('layers.0.proj').parameter('weight');
    weight.set(tf.zeros([3, 4]));
    expect(weight.isMeta).toBe(false);
    expect(() => weight.set(tf.zeros([4, 3]), 'layers.0.proj.weight')).toThrow('layers.0.proj.weight: expected shape [3,4], got [4,3]');
  });

  it('marks trainable parameters by name and propagates train/eval', () => {
    const model = new Stack(2);
    markTrainableByName(model, ['norm']);
    expect(model.namedParameters().filter(([, parameter]) => parameter.requiresGrad).map(([name]) => name)).toEqual([
      'layers.0.norm.weight',
      'layers.1.norm.weight',
    ]);
    expect(model.getSubmodule('layers.0.proj').parameter('weight').value.trainable).toBe(false);
    model.eval();
    expect(model.namedModules().every(([, module]) => !module.training)).toBe(true);
  });

  it('counts each parameter as its logical size and its stored bytes, and copies keep the logical size', () => {
    /** 12 values packed into 2 int32 words beside 3 float statistics, as a quantized layer holds them. */
    class Packed extends Module {
      readonly kind = 'packed';
      constructor() {
        super();
        this.registerParameter('weight', new Parameter(tf.zeros([2], 'int32'), { requiresGrad: false, logicalSize: 12 }));
        this.registerParameter('scales', new Parameter(tf.ones([3]), { requiresGrad: false, logicalSize: 0 }));
        this.registerParameter('bias', new Parameter(tf.zeros([3])));
      }
      forward(input: tf.Tensor): tf.Tensor {
        return input;
      }
    }
    const model = new Packed();
    expect(countParameters(model)).toEqual({ total: 12 + 0 + 3, trainable: 3, bytes: 4 * (2 + 3 + 3) });
    const weight = model.parameter('weight');
    expect([weight.size, weight.logicalSize]).toEqual([2, 12]);
    const copies = [copyParameter(weight), copyParameter(new Parameter({ shape: [2], dtype: 'int32' }, { logicalSize: 12 }))];
    expect(copies.map((copy) => [copy.isMeta, copy.logicalSize])).toEqual([[false, 12], [true, 12]]);
    expect(Parameter.meta([2, 3]).logicalSize).toBe(6);
    for (const logicalSize of [-1, 1.5, Number.NaN]) {
      expect(() => new Parameter({ shape: [2] }, { logicalSize })).toThrow(`parameter of shape [2]: logicalSize must be a non-negative integer, got ${logicalSize}`);
    }
    copies[0].dispose();
    model.dispose();
  });

  it('meta parameters report their size and bytes', () => {
    expect(Parameter.meta([2, 3]).byteLength).toBe(24);
    expect(Parameter.meta([8], 'bool').byteLength).toBe(8);
  });
});
