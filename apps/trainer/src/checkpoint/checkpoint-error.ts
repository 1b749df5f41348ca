import { PeftError } from '@peft-ts/core';

/** A checkpoint that cannot be written, found or read back. */
export class CheckpointError extends PeftError {}
