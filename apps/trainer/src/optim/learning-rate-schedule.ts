import type { LearningRateSchedulerType } from '@peft-ts/config';

export type LearningRateScheduleOptions = {
  readonly type: LearningRateSchedulerType;
  /** The peak (base) learning rate. */
  readonly learningRate: number;
  readonly warmupSteps: number;
  readonly totalSteps: number;
};

/**
 * The learning rate of optimizer step `step` (0-based: the number of scheduler steps taken before it), as
 * transformers' LambdaLR schedules give it: `linear` = get_linear_schedule_with_warmup, `cosine` =
 * get_cosine_schedule_with_warmup with half a cycle, `constant` = get_constant_schedule_with_warmup (identical to
 * get_constant_schedule when there is no warmup).
 */
export function learningRateSchedule(options: LearningRateScheduleOptions): (step: number) => number {
  const { type, learningRate, warmupSteps, totalSteps } = options;
  const decay = {
    linear: (step: number) => Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps)),
    cosine: (step: number) => {
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
    },
    constant: () => 1,
  }[type];
  return (step) => learningRate * (step < warmupSteps ? step / Math.max(1, warmupSteps) : decay(step));
}
