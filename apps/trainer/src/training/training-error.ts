import { PeftError } from '@peft-ts/core';

/** A training run that cannot start or continue. */
export class TrainingError extends PeftError {}
