/** Label value left out of the loss (PyTorch CrossEntropyLoss's default ignore_index). */
export const IGNORE_INDEX = -100;

/** One training sequence: token ids, the label of each position (or IGNORE_INDEX), and which positions are real. */
export type TokenizedExample = {
  readonly inputIds: readonly number[];
  readonly labels: readonly number[];
  readonly attentionMask: readonly number[];
};
