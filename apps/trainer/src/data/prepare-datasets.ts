import type { TrainingConfig } from '@peft-ts/config';
import { DataFormatError } from './data-format-error.js';
import { packExamples } from './pack-examples.js';
import { readExamples } from './read-examples.js';
import { splitValidation } from './split-validation.js';
import type { TokenizeOptions } from './tokenize-record.js';
import { IGNORE_INDEX, type TokenizedExample } from './tokenized-example.js';

export type PrepareDatasetsOptions = Pick<TrainingConfig, 'data' | 'maxSeqLength' | 'packing' | 'validationSplit' | 'seed'> &
  TokenizeOptions & { readonly vocabSize: number };

export type DatasetStatistics = {
  readonly trainingRecords: number;
  readonly validationRecords: number;
  /** Sequences cut to max_seq_length (without packing). */
  readonly truncated: number;
  /** Sequences dropped because no position was left in the loss (e.g. a prompt longer than max_seq_length). */
  readonly withoutLabels: number;
  readonly trainingTokens: number;
};

export type PreparedDatasets = {
  readonly training: TokenizedExample[];
  readonly validation: TokenizedExample[];
  /** The tokenizer's pad id, else EOS (what TRL sets for Mistral-like tokenizers), else 0; padding is masked anyway. */
  readonly padTokenId: number;
  readonly statistics: DatasetStatistics;
};

/**
 * Reads the training (and validation) JSONL files, holds out `validation_split` when there is no validation file,
 * then packs the sequences into max_seq_length blocks or truncates each one to max_seq_length.
 */
export async function prepareDatasets(options: PrepareDatasetsOptions): Promise<PreparedDatasets> {
  const { data, tokenizer } = options;
  const trainPath = typeof data === 'string' ? data : data.train;
  const validationPath = typeof data === 'string' ? undefined : data.validation;
  const records = await readExamples(trainPath, options);
  const split = validationPath
    ? { training: records, validation: await readExamples(validationPath, options) }
    : splitValidation(records, options.validationSplit, options.seed, trainPath);

  let truncated = 0;
  const toSequences = (examples: TokenizedExample[], source: string, keepRemainder: boolean) => {
    if (examples.length === 0) return [];
    if (!options.packing) {
      return examples.map((example) => {
        if (example.inputIds.length <= options.maxSeqLength) return example;
        truncated += 1;
        const cut = (list: readonly number[]) => list.slice(0, options.maxSeqLength);
        return { inputIds: cut(example.inputIds), labels: cut(example.labels), attentionMask: cut(example.attentionMask) };
      });
    }
    if (tokenizer.eosTokenId == null) throw new DataFormatError(`${source}: packing needs a tokenizer with an EOS token`);
    return packExamples(examples, options.maxSeqLength, tokenizer.eosTokenId, { keepRemainder, source });
  };
  let withoutLabels = 0;
  // The loss predicts position t from the positions before it, so a label at position 0 never counts.
  const learnable = (sequences: TokenizedExample[]) =>
    sequences.filter((sequence) => {
      const keep = sequence.labels.some((label, position) => position > 0 && label !== IGNORE_INDEX);
      if (!keep) withoutLabels += 1;
      return keep;
    });
  const training = learnable(toSequences(split.training, trainPath, false));
  const validation = learnable(toSequences(split.validation, validationPath ?? trainPath, true));
  if (training.length === 0) throw new DataFormatError(`${trainPath}: no training sequence has a label to learn`);
  return {
    training,
    validation,
    padTokenId: tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0,
    statistics: {
      trainingRecords: split.training.length,
      validationRecords: split.validation.length,
      truncated,
      withoutLabels,
      trainingTokens: training.reduce((sum, sequence) => sum + sequence.attentionMask.filter(Boolean).length, 0),
    },
  };
}
