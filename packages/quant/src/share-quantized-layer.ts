import type { Module } from '@peft-ts/core';

/**
 * Makes `replica` hold `source`'s parameters (the stored codes, scales and bias) in place of its
 * own, which it frees: a replicated layer adds no weight memory.
 */
export function shareQuantizedLayer<T extends Module>(source: Module, replica: T): T {
  for (const [, parameter] of replica.directParameters()) parameter.dispose();
  for (const [name] of replica.directParameters()) replica.setParameter(name, null);
  for (const [name, parameter] of source.directParameters()) replica.setParameter(name, parameter);
  replica.training = source.training;
  return replica;
}
