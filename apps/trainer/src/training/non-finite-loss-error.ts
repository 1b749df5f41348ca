import { TrainingDivergedError } from './training-diverged-error.js';

/** The loss or gradient norm of a step was NaN or infinite; the run stopped before applying that step. */
export class NonFiniteLossError extends TrainingDivergedError {}
