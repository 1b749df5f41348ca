import * as tf from '@tensorflow/tfjs-core';
import { randomState, setRandomState } from './random.js';

type EngineWithTape = { state: { activeTape: unknown } };

export type CheckpointOptions = {
  /** Trainable weights `body` reads: tfjs custom gradients reach only what is passed in. */
  readonly variables: readonly tf.Variable[];
  /** Tensors `body` needs that take no gradient (masks, rotary tables); kept alive until backward. */
  readonly constants?: readonly tf.Tensor[];
};

/**
 * Gradient checkpointing: runs `body` without keeping its intermediate activations and recomputes
 * them during the backward pass. `body` must read its tensors from its arguments (the saved
 * copies), not from outer variables that may be freed after the forward. The random stream is
 * replayed so dropout masks in the recomputation equal the forward's.
 */
export function checkpoint(
  body: (inputs: tf.Tensor[], constants: tf.Tensor[]) => tf.Tensor,
  inputs: readonly tf.Tensor[],
  options: CheckpointOptions,
): tf.Tensor {
  const { variables } = options;
  const constants = options.constants ?? [];
  const seedState = randomState();
  const run = tf.customGrad(((...argumentsAndSave: unknown[]) => {
    const save = argumentsAndSave.pop() as (tensors: tf.Tensor[]) => void;
    const ownInputs = argumentsAndSave.slice(0, inputs.length) as tf.Tensor[];
    save([...ownInputs, ...constants]);
    return {
      value: body(ownInputs, [...constants]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const savedInputs = saved.slice(0, inputs.length);
        const savedConstants = saved.slice(inputs.length);
        const engine = tf.engine() as unknown as EngineWithTape;
        // A gradient computed inside a backward pass replaces the engine's tape; keep the outer one.
        const outerTape = engine.state.activeTape;
        const resumeState = randomState();
        setRandomState(seedState);
        try {
          const sources = [...savedInputs, ...variables];
          const { grads } = tf.engine().gradients(() => body(savedInputs, savedConstants), sources, dy, true);
          return grads.map((gradient, index) => gradient ?? tf.zerosLike(sources[index]));
        } finally {
          setRandomState(resumeState);
          engine.state.activeTape = outerTape;
        }
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return run(...inputs, ...variables);
}
