import { describe, expect, it } from 'vitest';
import { learningRateSchedule } from './learning-rate-schedule.js';

const steps = (schedule: (step: number) => number, count: number) =>
  Array.from({ length: count }, (_, step) => schedule(step));

describe('learningRateSchedule', () => {
  it('linear: ramps up over the warmup, then decays to 0 at the last step (get_linear_schedule_with_warmup)', () => {
    const schedule = learningRateSchedule({ type: 'linear', learningRate: 1, warmupSteps: 2, totalSteps: 6 });
    // Warmup: 0/2, 1/2; decay: (6 − s)/(6 − 2).
    expect(steps(schedule, 8)).toEqual([0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0]);
    const scaled = learningRateSchedule({ type: 'linear', learningRate: 2e-4, warmupSteps: 0, totalSteps: 4 });
    expect(steps(scaled, 4)).toEqual([2e-4, 2e-4 * 0.75, 2e-4 * 0.5, 2e-4 * 0.25]);
  });

  it('cosine: half a cosine period after the warmup (get_cosine_schedule_with_warmup)', () => {
    const schedule = learningRateSchedule({ type: 'cosine', learningRate: 1, warmupSteps: 1, totalSteps: 5 });
    // progress = (s − 1)/4; factor = ½(1 + cos(π·progress)).
    const expected = [0, 1, 0.5 * (1 + Math.SQRT1_2), 0.5, 0.5 * (1 - Math.SQRT1_2), 0];
    steps(schedule, 6).forEach((value, step) => expect(value).toBeCloseTo(expected[step], 15));
  });

  it('constant: flat, with a linear warmup when one is set (get_constant_schedule_with_warmup)', () => {
    expect(steps(learningRateSchedule({ type: 'constant', learningRate: 3e-4, warmupSteps: 0, totalSteps: 3 }), 3)).toEqual([
      3e-4, 3e-4, 3e-4,
    ]);
    expect(steps(learningRateSchedule({ type: 'constant', learningRate: 1, warmupSteps: 4, totalSteps: 9 }), 6)).toEqual([
      0, 0.25, 0.5, 0.75, 1, 1,
    ]);
  });
});
