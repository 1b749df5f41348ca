import { PeftError, isDecoderModel, type Module } from '@peft-ts/core';
import { Linear4bit } from './linear-4bit.js';
import { Linear8bitLt } from './linear-8bit-lt.js';

export type PrepareModelForKbitTrainingOptions = {
  /** Turn on gradient checkpointing for a quantized model (default true, as PEFT). */
  readonly useGradientCheckpointing?: boolean;
};

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
