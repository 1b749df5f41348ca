import { PeftError, isDecoderModel, type Module } from '@peft-ts/core';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';

/**
 * The `torch.utils.checkpoint` keyword arguments PEFT passes on to `gradient_checkpointing_enable` (camelCase here).
 * Our `checkpoint` is a custom gradient that receives the layer input and the trainable weights explicitly, so
 * gradients are the same whatever PyTorch's re-entrant variant would do: `useReentrant` is accepted and changes
 * nothing (PEFT reads it only to decide on `enable_input_require_grads()`, which is not needed here either).
 */
export type GradientCheckpointingKwargs = {
  readonly useReentrant?: boolean;
  /** Only true (PyTorch's default): the random stream is always replayed, so dropout masks recompute equal. */
  readonly preserveRngState?: boolean;
};

export type PrepareModelForKbitTrainingOptions = {
  /** Turn on gradient checkpointing for a quantized model (default true, as PEFT). */
  readonly useGradientCheckpointing?: boolean;
  /** PEFT's `gradient_checkpointing_kwargs`; see GradientCheckpointingKwargs. */
  readonly gradientCheckpointingKwargs?: GradientCheckpointingKwargs | null;
};

const CHECKPOINTING_KWARGS = ['useReentrant', 'preserveRngState'];

function checkCheckpointingKwargs(kwargs: GradientCheckpointingKwargs | null | undefined): void {
  if (kwargs === null || kwargs === undefined) return;
  const problems = Object.entries(kwargs).flatMap(([key, value]) => {
    if (!CHECKPOINTING_KWARGS.includes(key)) return [`'${key}' is not one of ${CHECKPOINTING_KWARGS.join(', ')}`];
    if (typeof value !== 'boolean') return [`${key}: expected a boolean, got ${JSON.stringify(value)}`];
    if (key === 'preserveRngState' && !value) {
      return ['preserveRngState: false is not supported (checkpointing always replays the random stream, so dropout recomputes the same masks)'];
    }
    return [];
  });
  if (problems.length) throw new PeftError(`prepareModelForKbitTraining: gradientCheckpointingKwargs: ${problems.join('; ')}`);
}

/**
 * PEFT 0.10 `prepare_model_for_kbit_training` (spec §F), in place; returns the model. Every parameter is frozen.
 * PEFT then upcasts fp16/bf16 parameters to fp32: every non-quantized parameter here is float32 already. For a
 * quantized model (one holding `Linear8bitLt` / `Linear4bit` layers) with checkpointing requested, the model's
 * `gradientCheckpointing` is set. PEFT also makes the input embeddings' output require grad, because PyTorch's
 * re-entrant checkpoint drops gradients when no input of a segment requires them; our `checkpoint` passes the
 * layer input and the trainable weights to its custom gradient explicitly, so gradients reach the adapters
 * without it. A model without quantized layers is only frozen, as in PEFT.
 */
export function prepareModelForKbitTraining<MODEL extends Module>(
  model: MODEL,
  options: PrepareModelForKbitTrainingOptions = {},
): MODEL {
  const { useGradientCheckpointing = true } = options;
  checkCheckpointingKwargs(options.gradientCheckpointingKwargs);
  for (const [, parameter] of model.namedParameters({ includeShared: true })) parameter.requiresGrad = false;
  const quantized = model.namedModules().some(([, module]) => module instanceof Linear4bit || module instanceof Linear8bitLt);
  if (quantized && useGradientCheckpointing) {
    if (!isDecoderModel(model)) {
      throw new PeftError(
        `prepareModelForKbitTraining: a '${model.kind}' model has no gradient checkpointing (it is not a DecoderModel); ` +
          'pass useGradientCheckpointing: false',
      );
    }
    model.gradientCheckpointing = true;
  }
  return model;
}
