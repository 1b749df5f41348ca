import type { TrainingConfig } from '@peft-ts/config';

/** Weight of the previous value in the loss average: an exponential moving average over about 10 steps. */
const smoothing = 0.9;

/** What the monitor carries from step to step; saved in trainer_state.json so a resumed run judges the same way. */
export type DivergenceState = {
  /** Exponential moving average of the step losses, before bias correction. */
  readonly loss_average: number;
  readonly steps: number;
  readonly first_loss: number | null;
  readonly lowest_smoothed_loss: number | null;
  readonly zero_grad_norm_steps: number;
};

const initialState: DivergenceState = { loss_average: 0, steps: 0, first_loss: null, lowest_smoothed_loss: null, zero_grad_norm_steps: 0 };

/**
 * Watches each step's loss and gradient norm for a run that has gone wrong: a smoothed loss risen above
 * `divergence_factor` times its lowest value and above where it started (the second condition lets a loss that is
 * already small wander without stopping the run), or `zero_grad_norm_steps` steps in a row with a zero gradient.
 */
export class DivergenceMonitor {
  private current: DivergenceState;

  constructor(
    private readonly settings: Pick<TrainingConfig, 'divergenceFactor' | 'zeroGradNormSteps'>,
    state: DivergenceState = initialState,
  ) {
    this.current = state;
  }

  get state(): DivergenceState {
    return this.current;
  }

  /** The bias-corrected average loss up to the last step observed (null before the first). */
  get smoothedLoss(): number | null {
    const { steps, loss_average } = this.current;
    return steps === 0 ? null : loss_average / (1 - smoothing ** steps);
  }

  /** Takes a step's (finite) loss and gradient norm; returns what went wrong, or null while the run is healthy. */
  observe(loss: number, gradientNorm: number): string | null {
    const previous = this.current;
    this.current = {
      loss_average: smoothing * previous.loss_average + (1 - smoothing) * loss,
      steps: previous.steps + 1,
      first_loss: previous.first_loss ?? loss,
      lowest_smoothed_loss: previous.lowest_smoothed_loss,
      zero_grad_norm_steps: gradientNorm === 0 ? previous.zero_grad_norm_steps + 1 : 0,
    };
    const smoothed = this.smoothedLoss!;
    const lowest = Math.min(previous.lowest_smoothed_loss ?? smoothed, smoothed);
    this.current = { ...this.current, lowest_smoothed_loss: lowest };
    const { divergenceFactor, zeroGradNormSteps } = this.settings;
    if (divergenceFactor > 0 && smoothed > divergenceFactor * lowest && smoothed > this.current.first_loss!) {
      return (
        `the smoothed training loss ${smoothed.toFixed(4)} is above ${divergenceFactor} × its lowest value ${lowest.toFixed(4)} ` +
        `(divergence_factor) and above the first step's ${this.current.first_loss!.toFixed(4)}: the run diverged`
      );
    }
    if (zeroGradNormSteps > 0 && this.current.zero_grad_norm_steps >= zeroGradNormSteps) {
      return `the gradient norm has been 0 for ${this.current.zero_grad_norm_steps} consecutive steps (zero_grad_norm_steps): nothing is being learned`;
    }
    return null;
  }
}
