import { PeftError } from '@peft-ts/core';

/** Saved optimizer state that does not fit the parameters being trained. */
export class OptimizerStateError extends PeftError {}
