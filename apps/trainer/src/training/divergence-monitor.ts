import type { TrainingConfig } from '@peft-ts/config';

/** Weight of the previous value in the loss average: an exponential moving average over about 10 steps. */
const smoothing = 0.9;
/**
 * A gradient norm this far below the first step's has vanished: a blown-up run saturates its softmax and its
 * gradients fall by five or more orders of magnitude without becoming exactly 0.
 */
const vanishedGradientRatio = 1e-5;

/** What the monitor carries from step to step; saved in trainer_state.json so a resumed run judges the same way. */
export type DivergenceState = {
  /** Exponential moving average of the step losses, before bias correction. */
  readonly loss_average: number;
  readonly steps: number;
  readonly first_loss: number | null;
  readonly lowest_smoothed_loss: number | null;
  readonly first_grad_norm: number | null;
  /** Consecutive steps with a vanished gradient while the loss was above its lowest. */
  readonly zero_grad_norm_steps: number;
};

/** What went wrong, and the setting whose check caught it. */
export type Divergence = { readonly what: string; readonly setting: 'divergence_factor' | 'zero_grad_norm_steps' };

const initialState: DivergenceState = {
  loss_average: 0,
  steps: 0,
  first_loss: null,
  lowest_smoothed_loss: null,
  first_grad_norm: null,
  zero_grad_norm_steps: 0,
};

/**
 * Watches each step's loss and gradient norm for a run that has gone wrong: a smoothed loss risen above
 * `divergence_factor` times its lowest value and above where it started (the second condition lets a loss that is
 * already small wander without stopping the run), or `zero_grad_norm_steps` steps in a row whose gradient vanished
 * (0, or under 1e-5 of the first step's) while the smoothed loss stayed above its lowest (a run converging to a
 * near-zero loss also has tiny gradients, but its loss keeps falling).
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
  observe(loss: number, gradientNorm: number): Divergence | null {
    const previous = this.current;
    const average = smoothing * previous.loss_average + (1 - smoothing) * loss;
    const steps = previous.steps + 1;
    const smoothed = average / (1 - smoothing ** steps);
    const lowest = Math.min(previous.lowest_smoothed_loss ?? smoothed, smoothed);
    const firstLoss = previous.first_loss ?? loss;
    const firstGradientNorm = previous.first_grad_norm ?? gradientNorm;
    const vanished = gradientNorm <= vanishedGradientRatio * firstGradientNorm && smoothed > lowest;
    this.current = {
      loss_average: average,
      steps,
      first_loss: firstLoss,
      lowest_smoothed_loss: lowest,
      first_grad_norm: firstGradientNorm,
      zero_grad_norm_steps: vanished ? previous.zero_grad_norm_steps + 1 : 0,
    };
    const { divergenceFactor, zeroGradNormSteps } = this.settings;
    if (divergenceFactor > 0 && smoothed > divergenceFactor * lowest && smoothed > firstLoss) {
      return {
        what:
          `the smoothed training loss ${smoothed.toFixed(4)} is above ${divergenceFactor} × its lowest value ${lowest.toFixed(4)} ` +
          `(divergence_factor) and above the first step's ${firstLoss.toFixed(4)}: the run diverged`,
        setting: 'divergence_factor',
      };
    }
    if (zeroGradNormSteps > 0 && this.current.zero_grad_norm_steps >= zeroGradNormSteps) {
      return {
        what:
          `the gradient norm has vanished (${gradientNorm.toExponential(2)}, under 1e-5 × the first step's ` +
          `${firstGradientNorm.toFixed(4)}) for ${this.current.zero_grad_norm_steps} consecutive steps while the smoothed loss ` +
          `${smoothed.toFixed(4)} stayed above its lowest ${lowest.toFixed(4)} (zero_grad_norm_steps): nothing is being learned`,
        setting: 'zero_grad_norm_steps',
      };
    }
    return null;
  }
}
