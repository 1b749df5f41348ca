import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, Linear, Module, type AdapterTargetModel } from '@peft-ts/core';

class Relu extends Module {
  readonly kind = 'relu';
  forward(input: tf.Tensor): tf.Tensor {
    return tf.relu(input);
  }
}

/** PyTorch `nn.Sequential`: children named '0', '1', … applied in order. */
export class Sequential extends Module implements AdapterTargetModel {
  readonly kind = 'sequential';
  readonly peftAutoMapping = { base_model_class: 'Sequential', parent_library: 'torch.nn.modules.container' };
  constructor(...modules: Module[]) {
    super();
    modules.forEach((module, index) => this.registerModule(String(index), module));
  }
  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      this.namedChildren().reduce((hidden, [, module]) => (module as unknown as { forward(x: tf.Tensor): tf.Tensor }).forward(hidden), input),
    );
  }
}

export const relu = () => new Relu();

/** PEFT's test MLP: lin0 Linear(10,20) → ReLU → lin1 Linear(20,2). */
export class Mlp extends Module implements AdapterTargetModel {
  readonly kind = 'mlp';
  constructor() {
    super();
    this.registerModule('lin0', new Linear(10, 20));
    this.registerModule('lin1', new Linear(20, 2));
  }
  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.child<Linear>('lin1').forward(tf.relu(this.child<Linear>('lin0').forward(input))));
  }
}

/** The fixture's conv model: Conv2d(3,8,3) → ReLU → Conv2d(8,4,3). */
export function createConvModel(): Sequential {
  return new Sequential(new Conv2d(3, 8, 3), relu(), new Conv2d(8, 4, 3));
}

/** PEFT's MLP test input `arange(90).view(9, 10)` as float. */
export function mlpInput(): tf.Tensor {
  return tf.tensor2d(Array.from({ length: 90 }, (_, index) => index), [9, 10]);
}
