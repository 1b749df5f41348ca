import { TrainingError } from './training-error.js';

/** The loss or gradient norm of a step was NaN or infinite; the run stopped before applying that step. */
export class NonFiniteLossError extends TrainingError {
  constructor(
    message: string,
    /** The optimizer step (1-based) that failed. */
    readonly step: number,
    /** The newest checkpoint, untouched by the failed step. */
    readonly lastCheckpoint: string | null,
  ) {
    super(message);
  }
}
