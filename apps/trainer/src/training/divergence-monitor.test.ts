import { describe, expect, it } from 'vitest';
import { DivergenceMonitor } from './divergence-monitor.js';

/** Feeds (loss, gradient norm) pairs; returns the step (1-based) that diverged and why, or null. */
function firstDivergence(monitor: DivergenceMonitor, steps: readonly [number, number][]) {
  for (const [index, [loss, norm]] of steps.entries()) {
    const divergence = monitor.observe(loss, norm);
    if (divergence) return { step: index + 1, setting: divergence.setting };
  }
  return null;
}

const defaults = { divergenceFactor: 3, zeroGradNormSteps: 3 };
const falling = (from: number, to: number, count: number): [number, number][] =>
  Array.from({ length: count }, (_, index) => [from * (to / from) ** (index / (count - 1)), 0.5]);

describe('DivergenceMonitor', () => {
  it('lets a healthy run be, including a small loss that wanders and a gradient shrinking while the loss falls', () => {
    const converging: [number, number][] = falling(2, 0.01, 40).map(([loss], index) => [loss, 0.5 * 1e-7 ** (index / 39)]);
    const wandering: [number, number][] = Array.from({ length: 20 }, (_, index) => [index % 2 ? 0.01 : 0.08, 0.1]);
    expect(firstDivergence(new DivergenceMonitor(defaults), [...converging, ...wandering])).toBeNull();
  });

  it('catches a loss that blows up at its first blown-up step', () => {
    const steps: [number, number][] = [...falling(2, 1, 10), ...Array.from({ length: 10 }, (): [number, number] => [40, 3])];
    expect(firstDivergence(new DivergenceMonitor(defaults), steps)).toEqual({ step: 11, setting: 'divergence_factor' });
    expect(firstDivergence(new DivergenceMonitor({ ...defaults, divergenceFactor: 0 }), steps)).toBeNull();
  });

  it('catches a gradient that vanished while the loss went up, after zero_grad_norm_steps steps', () => {
    const steps: [number, number][] = [...falling(7.5, 7, 3), ...Array.from({ length: 6 }, (): [number, number] => [9.9, 5e-7])];
    expect(firstDivergence(new DivergenceMonitor(defaults), steps)).toEqual({ step: 6, setting: 'zero_grad_norm_steps' });
    expect(firstDivergence(new DivergenceMonitor({ ...defaults, zeroGradNormSteps: 5 }), steps)).toEqual({ step: 8, setting: 'zero_grad_norm_steps' });
    expect(firstDivergence(new DivergenceMonitor({ ...defaults, zeroGradNormSteps: 0 }), steps)).toBeNull();
  });

  it('continues from a saved state exactly as if never stopped', () => {
    const steps: [number, number][] = [...falling(2, 1, 6), [1.5, 0], [1.6, 0], [1.7, 0]];
    const straight = new DivergenceMonitor(defaults);
    const first = new DivergenceMonitor(defaults);
    expect(firstDivergence(first, steps.slice(0, 7))).toBeNull();
    const resumed = new DivergenceMonitor(defaults, JSON.parse(JSON.stringify(first.state)));
    expect(firstDivergence(straight, steps)).toEqual({ step: 9, setting: 'zero_grad_norm_steps' });
    expect(firstDivergence(resumed, steps.slice(7))).toEqual({ step: 2, setting: 'zero_grad_norm_steps' });
    expect(resumed.state).toEqual(straight.state);
    expect(resumed.smoothedLoss).toBe(straight.smoothedLoss);
  });
});
