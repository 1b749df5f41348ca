import { PeftError } from '@peft-ts/core';

/** Training data that cannot be read or used; the message starts with `file:line:` where a line is at fault. */
export class DataFormatError extends PeftError {}
