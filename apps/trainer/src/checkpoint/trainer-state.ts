import { z } from 'zod';
import { CheckpointError } from './checkpoint-error.js';

/** One entry of `log_history`: `step`, `epoch` and metrics named as transformers' Trainer logs them. */
export type LogHistoryEntry = { readonly step: number; readonly epoch: number; readonly [metric: string]: number | null };

const count = z.int().nonnegative();
const positiveCount = z.int().positive();

const trainerStateSchema = z.object({
  // transformers' TrainerState fields, so tools that read trainer_state.json find what they expect.
  best_metric: z.number().nullable(),
  best_model_checkpoint: z.string().nullable(),
  epoch: z.number().nonnegative(),
  eval_steps: positiveCount,
  global_step: count,
  is_hyper_param_search: z.boolean(),
  is_local_process_zero: z.boolean(),
  is_world_process_zero: z.boolean(),
  log_history: z.array(z.object({ step: count, epoch: z.number() }).catchall(z.number().nullable())) as z.ZodType<
    LogHistoryEntry[]
  >,
  logging_steps: positiveCount,
  max_steps: positiveCount,
  num_input_tokens_seen: count,
  num_train_epochs: positiveCount,
  save_steps: positiveCount,
  total_flos: z.number(),
  train_batch_size: positiveCount,
  trial_name: z.null(),
  trial_params: z.null(),
  // What an exact resume needs beyond that: where the data stream stood, the seed that orders the data and
  // reseeds dropout every step, the settings the data order depends on, and the running loss sums.
  data_cursor: z.object({ epoch: count, position: count }),
  seed: count,
  gradient_accumulation_steps: positiveCount,
  train_examples: positiveCount,
  loss_since_last_log: z.object({ sum: z.number(), steps: count }),
  total_loss: z.number(),
  // The divergence checks' running values; absent in checkpoints written before them (the checks then restart).
  divergence: z
    .object({
      loss_average: z.number(),
      steps: count,
      first_loss: z.number().nullable(),
      lowest_smoothed_loss: z.number().nullable(),
      first_grad_norm: z.number().nullable(),
      zero_grad_norm_steps: count,
    })
    .optional(),
});

/** trainer_state.json: transformers' TrainerState plus the peft-ts fields an exact resume needs. */
export type TrainerState = z.output<typeof trainerStateSchema>;

export function serializeTrainerState(state: TrainerState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

/** Parses trainer_state.json text; `source` (the file) starts error messages. */
export function parseTrainerState(text: string, source: string): TrainerState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${source}: invalid JSON (${(error as Error).message})`);
  }
  const result = trainerStateSchema.safeParse(value);
  if (!result.success) {
    const [issue] = result.error.issues;
    throw new CheckpointError(`${source}: ${issue.path.join('.') || 'top level'}: ${issue.message}`);
  }
  return result.data;
}
