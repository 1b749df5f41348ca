import * as tf from '@tensorflow/tfjs-core';
import { Parameter } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { AdamW } from './adamw.js';
import { OptimizerStateError } from './optimizer-state-error.js';

/** torch.optim.AdamW's update rule in float64, one parameter. */
function referenceAdamW(
  initial: number[],
  gradients: number[][],
  learningRates: number[],
  options: { weightDecay: number; beta1?: number; beta2?: number; epsilon?: number },
): number[] {
  const { weightDecay, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = options;
  const parameter = [...initial];
  const expAverage = initial.map(() => 0);
  const expAverageSquared = initial.map(() => 0);
  gradients.forEach((gradient, index) => {
    const step = index + 1;
    const learningRate = learningRates[index];
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    for (let i = 0; i < parameter.length; i++) {
      parameter[i] *= 1 - learningRate * weightDecay;
      expAverage[i] = beta1 * expAverage[i] + (1 - beta1) * gradient[i];
      expAverageSquared[i] = beta2 * expAverageSquared[i] + (1 - beta2) * gradient[i] ** 2;
      const denominator = Math.sqrt(expAverageSquared[i]) / Math.sqrt(biasCorrection2) + epsilon;
      parameter[i] -= (learningRate / biasCorrection1) * (expAverage[i] / denominator);
    }
  });
  return parameter;
}

/** Deterministic pseudo-random values in [-scale, scale). */
function values(count: number, seed: number, scale = 1): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32 - 0.5) * 2 * scale;
  });
}

describeWithBackends('AdamW', () => {
  const learningRates = [1e-3, 2e-3, 5e-3, 1e-2, 3e-3];

  it('matches the float64 PyTorch update rule over several steps, with and without weight decay', () => {
    const initial = values(12, 1);
    const gradientSteps = learningRates.map((_, step) => values(12, 100 + step, step === 2 ? 1e-4 : 3));
    const decayed = new Parameter(tf.tensor2d(initial, [3, 4]));
    const plain = new Parameter(tf.tensor1d(initial));
    const optimizer = new AdamW(
      [
        ['layer.weight', decayed],
        ['layer.bias', plain],
      ],
      { weightDecay: 0.1, decays: (name) => !name.endsWith('bias') },
    );
    gradientSteps.forEach((gradient, step) => {
      const gradients = new Map<string, tf.Tensor>([
        ['layer.weight', tf.tensor2d(gradient, [3, 4])],
        ['layer.bias', tf.tensor1d(gradient)],
      ]);
      optimizer.step(gradients, learningRates[step]);
      tf.dispose([...gradients.values()]);
    });
    const expectedDecayed = referenceAdamW(initial, gradientSteps, learningRates, { weightDecay: 0.1 });
    const expectedPlain = referenceAdamW(initial, gradientSteps, learningRates, { weightDecay: 0 });
    expect(maxAbsDifference(decayed.value, expectedDecayed)).toBeLessThan(2e-6);
    expect(maxAbsDifference(plain.value, expectedPlain)).toBeLessThan(2e-6);
    // The first update moves each weight by about lr, so a sign error or missing bias correction would show.
    expect(maxAbsDifference(plain.value, initial)).toBeGreaterThan(5e-3);
    optimizer.dispose();
    decayed.dispose();
    plain.dispose();
  });

  it('skips parameters without a gradient, keeping their step count apart (PyTorch lazy state)', () => {
    const first = new Parameter(tf.tensor1d([1, 2]));
    const second = new Parameter(tf.tensor1d([3, 4]));
    const optimizer = new AdamW([
      ['first', first],
      ['second', second],
    ]);
    const gradient = tf.tensor1d([0.5, -0.5]);
    optimizer.step(new Map([['first', gradient]]), 0.1);
    expect(Array.from(second.value.dataSync())).toEqual([3, 4]);
    optimizer.step(new Map([['first', gradient], ['second', gradient]]), 0.1);
    const state = optimizer.state();
    expect(state.get('first.step')!.dataSync()[0]).toBe(2);
    expect(state.get('second.step')!.dataSync()[0]).toBe(1);
    // After one bias-corrected step each weight moves by exactly lr·sign(g) up to eps.
    expect(maxAbsDifference(second.value, [2.9, 4.1])).toBeLessThan(1e-6);
    tf.dispose([...state.values(), gradient]);
    optimizer.dispose();
    first.dispose();
    second.dispose();
  });

  it('continues bit-for-bit from a saved state, and keeps the tensor count flat across steps', async () => {
    const initial = values(6, 7);
    const gradientSteps = [0, 1, 2, 3, 4, 5].map((step) => tf.tensor1d(values(6, 200 + step)));
    const run = (optimizer: AdamW, from: number, to: number) => {
      for (let step = from; step < to; step++) optimizer.step(new Map([['w', gradientSteps[step]]]), learningRates[step % 5]);
    };
    const straight = new Parameter(tf.tensor1d(initial));
    const straightOptimizer = new AdamW([['w', straight]], { weightDecay: 0.01 });
    run(straightOptimizer, 0, 2);
    const counts: number[] = [];
    for (let step = 2; step < 6; step++) {
      run(straightOptimizer, step, step + 1);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);

    const resumedParameter = new Parameter(tf.tensor1d(initial));
    const interrupted = new AdamW([['w', resumedParameter]], { weightDecay: 0.01 });
    run(interrupted, 0, 3);
    const saved = interrupted.state();
    expect([...saved.keys()].sort()).toEqual(['w.exp_avg', 'w.exp_avg_sq', 'w.step']);
    interrupted.dispose();
    const resumed = new AdamW([['w', resumedParameter]], { weightDecay: 0.01 });
    await resumed.loadState(saved);
    tf.dispose([...saved.values()]);
    run(resumed, 3, 6);
    expect(Array.from(resumedParameter.value.dataSync())).toEqual(Array.from(straight.value.dataSync()));
    tf.dispose(gradientSteps);
    straightOptimizer.dispose();
    resumed.dispose();
    straight.dispose();
    resumedParameter.dispose();
  });

  it('rejects state that does not fit, naming the entries', async () => {
    const parameter = new Parameter(tf.tensor1d([1, 2, 3]));
    const optimizer = new AdamW([['w', parameter]]);
    const wrong = new Map<string, tf.Tensor>([
      ['w.exp_avg', tf.zeros([2])],
      ['w.exp_avg_sq', tf.zeros([3])],
      ['w.step', tf.scalar(1)],
      ['v.step', tf.scalar(1)],
    ]);
    await expect(optimizer.loadState(wrong, 'checkpoint-3/optimizer.safetensors')).rejects.toThrow(OptimizerStateError);
    await expect(optimizer.loadState(wrong, 'checkpoint-3/optimizer.safetensors')).rejects.toThrow(
      /checkpoint-3\/optimizer\.safetensors: .*w\.exp_avg: expected float32 \[3\], got float32 \[2\].*unexpected: v\.step/,
    );
    tf.dispose([...wrong.values()]);
    optimizer.dispose();
    parameter.dispose();
  });
});
