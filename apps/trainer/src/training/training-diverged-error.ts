import { TrainingError } from './training-error.js';

/** The run stopped because training went wrong (a loss blow-up, a dead gradient); the failed step was not applied. */
export class TrainingDivergedError extends TrainingError {
  constructor(
    message: string,
    /** The optimizer step (1-based) that failed. */
    readonly step: number,
    /** The newest checkpoint, untouched by the failed step. */
    readonly lastCheckpoint: string | null,
    /** The checkpoint with the best metric (trainer_state.json's best_model_checkpoint), never rotated away. */
    readonly bestCheckpoint: string | null,
  ) {
    super(message);
  }
}
