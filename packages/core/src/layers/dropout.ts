import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { PeftError } from '../errors.js';
import { Module } from '../module.js';
import { nextSeed } from '../random.js';

/** Inverted dropout in training mode (kept values scaled by 1/(1−p)); identity in eval mode or p = 0. */
export class Dropout extends Module {
  static {
    brandClass(this, '@peft-ts/core:Dropout');
  }

  readonly kind = 'dropout' as const;

  constructor(readonly probability: number) {
    super();
    if (!(probability >= 0 && probability < 1)) {
      throw new PeftError(`Dropout: probability must be in [0, 1), got ${probability}`);
    }
  }

  get isIdentity(): boolean {
    return !this.training || this.probability === 0;
  }

  forward(input: tf.Tensor): tf.Tensor {
    return this.isIdentity ? input : tf.dropout(input, this.probability, undefined, nextSeed());
  }
}
