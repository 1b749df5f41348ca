import * as tf from '@tensorflow/tfjs-core';
import type { NamedParameter, Parameter } from '@peft-ts/core';
import { OptimizerStateError } from './optimizer-state-error.js';

export type AdamWOptions = {
  /** Decoupled weight decay (Hugging Face TrainingArguments default 0). */
  readonly weightDecay?: number;
  readonly betas?: readonly [number, number];
  readonly epsilon?: number;
  /** Whether a parameter takes weight decay; all do unless this says otherwise. */
  readonly decays?: (name: string) => boolean;
};

type ParameterState = { step: number; expAverage: tf.Variable; expAverageSquared: tf.Variable };

const stateSuffixes = ['exp_avg', 'exp_avg_sq', 'step'] as const;

/**
 * `torch.optim.AdamW` (single-tensor path): `p ← p·(1 − lr·wd)`, then Adam with bias correction. State is created
 * on a parameter's first gradient, and parameters without a gradient in a step are left alone, as in PyTorch.
 */
export class AdamW {
  private readonly parameters: ReadonlyMap<string, Parameter>;
  private readonly states = new Map<string, ParameterState>();
  private readonly weightDecay: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly decays: (name: string) => boolean;

  constructor(parameters: readonly NamedParameter[], options: AdamWOptions = {}) {
    this.parameters = new Map(parameters);
    this.weightDecay = options.weightDecay ?? 0;
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.epsilon = options.epsilon ?? 1e-8;
    this.decays = options.decays ?? (() => true);
  }

  /** Applies one update; `gradients` are keyed by parameter name and stay owned by the caller. */
  step(gradients: ReadonlyMap<string, tf.Tensor>, learningRate: number): void {
    for (const name of gradients.keys()) {
      if (!this.parameters.has(name)) throw new OptimizerStateError(`AdamW: gradient for unknown parameter '${name}'`);
    }
    for (const [name, parameter] of this.parameters) {
      const gradient = gradients.get(name);
      if (!gradient) continue;
      if (gradient.shape.join() !== parameter.shape.join()) {
        throw new OptimizerStateError(`AdamW: gradient of '${name}' has shape [${gradient.shape}], expected [${parameter.shape}]`);
      }
      const state = this.states.get(name) ?? this.createState(name, parameter);
      state.step += 1;
      // Scalars in float64 as PyTorch computes them in Python, rounded to float32 when they meet the tensors.
      const decay = this.decays(name) ? 1 - learningRate * this.weightDecay : 1;
      const stepSize = learningRate / (1 - this.beta1 ** state.step);
      const biasCorrection2Root = Math.sqrt(1 - this.beta2 ** state.step);
      tf.tidy(() => {
        const weight = parameter.value;
        const decayed = decay === 1 ? weight : tf.mul(weight, decay);
        // exp_avg.lerp_(grad, 1 − β1) is computed as exp_avg + (1 − β1)·(grad − exp_avg) for weights below 0.5.
        const expAverage = tf.add(state.expAverage, tf.mul(tf.sub(gradient, state.expAverage), 1 - this.beta1));
        const expAverageSquared = tf.add(
          tf.mul(state.expAverageSquared, this.beta2),
          tf.mul(tf.mul(gradient, gradient), 1 - this.beta2),
        );
        const denominator = tf.add(tf.div(tf.sqrt(expAverageSquared), biasCorrection2Root), this.epsilon);
        const updated = tf.add(decayed, tf.mul(tf.div(expAverage, denominator), -stepSize));
        state.expAverage.assign(expAverage);
        state.expAverageSquared.assign(expAverageSquared);
        weight.assign(updated);
      });
    }
  }

  /**
   * A copy of the state as named tensors (`<name>.exp_avg`, `<name>.exp_avg_sq`, `<name>.step`, the step as a float32
   * scalar like PyTorch's), for checkpoints. The caller disposes them.
   */
  state(): Map<string, tf.Tensor> {
    const result = new Map<string, tf.Tensor>();
    for (const [name, state] of this.states) {
      result.set(`${name}.exp_avg`, tf.clone(state.expAverage));
      result.set(`${name}.exp_avg_sq`, tf.clone(state.expAverageSquared));
      result.set(`${name}.step`, tf.scalar(state.step, 'float32'));
    }
    return result;
  }

  /**
   * Replaces the state with one produced by `state()`; the caller keeps ownership of `tensors`. Async because it reads
   * the step scalars, which device backends only read back asynchronously.
   */
  async loadState(tensors: ReadonlyMap<string, tf.Tensor>, source = 'optimizer state'): Promise<void> {
    const problems: string[] = [];
    const claimed = new Set<string>();
    const loaded = new Map<string, { step: number; expAverage: tf.Tensor; expAverageSquared: tf.Tensor }>();
    for (const [name, parameter] of this.parameters) {
      const keys = stateSuffixes.map((suffix) => `${name}.${suffix}`);
      const present = keys.filter((key) => tensors.has(key));
      present.forEach((key) => claimed.add(key));
      if (present.length === 0) continue;
      if (present.length < keys.length) {
        problems.push(`${name}: has ${present.join(', ')} but not ${keys.filter((key) => !tensors.has(key)).join(', ')}`);
        continue;
      }
      const [expAverage, expAverageSquared, step] = keys.map((key) => tensors.get(key)!);
      for (const [key, tensor] of [[keys[0], expAverage], [keys[1], expAverageSquared]] as const) {
        if (tensor.dtype !== 'float32' || tensor.shape.join() !== parameter.shape.join()) {
          problems.push(`${key}: expected float32 [${parameter.shape}], got ${tensor.dtype} [${tensor.shape}]`);
        }
      }
      const stepValue = step.size === 1 ? (await step.data())[0] : NaN;
      if (!(Number.isInteger(stepValue) && stepValue > 0)) problems.push(`${keys[2]}: expected a positive integer scalar`);
      loaded.set(name, { step: stepValue, expAverage, expAverageSquared });
    }
    const unexpected = [...tensors.keys()].filter((key) => !claimed.has(key));
    if (unexpected.length) problems.push(`unexpected: ${unexpected.join(', ')}`);
    if (problems.length) {
      throw new OptimizerStateError(`${source}: does not fit the trained parameters (${problems.join(' | ')})`);
    }
    this.dispose();
    for (const [name, state] of loaded) {
      this.states.set(name, {
        step: state.step,
        expAverage: tf.variable(state.expAverage, false),
        expAverageSquared: tf.variable(state.expAverageSquared, false),
      });
    }
  }

  dispose(): void {
    for (const state of this.states.values()) {
      state.expAverage.dispose();
      state.expAverageSquared.dispose();
    }
    this.states.clear();
  }

  private createState(name: string, parameter: Parameter): ParameterState {
    const zeros = tf.zeros(parameter.shape as number[], 'float32');
    const state = { step: 0, expAverage: tf.variable(zeros, false), expAverageSquared: tf.variable(zeros, false) };
    zeros.dispose();
    this.states.set(name, state);
    return state;
  }
}
