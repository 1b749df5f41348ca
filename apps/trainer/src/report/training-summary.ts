import { formatDuration } from './format-duration.js';

export type TrainingSummary = {
  readonly status: 'completed' | 'interrupted';
  readonly globalStep: number;
  readonly maxSteps: number;
  readonly epoch: number;
  /** Mean training loss over all optimizer steps so far (transformers' `train_loss`). */
  readonly trainingLoss: number | null;
  /** The last logged training loss. */
  readonly finalLoss: number | null;
  readonly evalLoss: number | null;
  readonly evalPerplexity: number | null;
  readonly bestEvalLoss: number | null;
  /** Wall time of this session (a resumed run counts from the resume). */
  readonly runtimeSeconds: number;
  readonly tokensPerSecond: number | null;
  readonly lastCheckpoint: string | null;
  /** trainer_state.json's best_model_checkpoint: by eval loss with a validation set, else by smoothed training loss. */
  readonly bestCheckpoint: string | null;
};

const number = (value: number | null, digits = 4) => (value === null ? 'n/a' : value.toFixed(digits));

/** A few lines for the console at the end of a run. */
export function formatTrainingSummary(summary: TrainingSummary): string {
  const lines = [
    `training ${summary.status}: step ${summary.globalStep}/${summary.maxSteps}, epoch ${summary.epoch.toFixed(2)}, ` +
      `${formatDuration(summary.runtimeSeconds)}` +
      (summary.tokensPerSecond === null ? '' : `, ${Math.round(summary.tokensPerSecond)} tokens/s`),
    `loss ${number(summary.finalLoss)} (mean ${number(summary.trainingLoss)})` +
      (summary.evalLoss === null
        ? ''
        : `, eval loss ${number(summary.evalLoss)} (perplexity ${number(summary.evalPerplexity, 2)}), best ${number(summary.bestEvalLoss)}`),
  ];
  if (summary.lastCheckpoint) lines.push(`last checkpoint: ${summary.lastCheckpoint}`);
  if (summary.bestCheckpoint && summary.bestCheckpoint !== summary.lastCheckpoint) lines.push(`best checkpoint: ${summary.bestCheckpoint}`);
  return lines.join('\n');
}
