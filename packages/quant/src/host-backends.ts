export { HOST_BACKENDS } from '@peft-ts/core';
