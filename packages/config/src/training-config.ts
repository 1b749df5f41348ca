import { z } from 'zod';
import {
  bitsAndBytesConfigFileSchema,
  bitsAndBytesConfigFromSnakeCase,
  bitsAndBytesConfigPythonValue,
  bitsAndBytesConfigSchema,
  bitsAndBytesConfigToSnakeCase,
} from './bits-and-bytes-config.js';
import { camelCaseKeys, snakeCaseKeys } from './case-conversion.js';
import { ConfigError, formatIssuePath } from './config-error.js';
import {
  camelCaseRefinement,
  type ConfigCheck,
  expected,
  parseFileObject,
  parseWithSchema,
  type ReadOptions,
  snakeCaseRefinement,
  strictObjectWithSuggestions,
} from './config-format.js';
import {
  flag,
  nonNegativeInteger,
  nonNegativeNumber,
  positiveInteger,
  unitFraction,
} from './field-schemas.js';
import {
  loraConfigFileSchema,
  loraConfigFromSnakeCase,
  loraConfigPythonValue,
  loraConfigSchema,
  loraConfigToSnakeCase,
} from './lora-config.js';
import { parseJsonText } from './json-text.js';
import { formatPythonJson, PythonFloat } from './python-json.js';

/** The requests `initBackend` of `@peft-ts/core/backend` accepts (`backendNames` there; a test keeps the two equal). */
export const trainingBackends = ['auto', 'tensorflow', 'webgpu', 'native', 'wasm', 'cpu'] as const;
export type TrainingBackend = (typeof trainingBackends)[number];

export const learningRateSchedulerTypes = ['linear', 'cosine', 'constant'] as const;
export type LearningRateSchedulerType = (typeof learningRateSchedulerTypes)[number];

const path = (what: string) => z.string(expected(`a path to ${what}`)).min(1, expected(`a path to ${what}`));

const dataFiles = strictObjectWithSuggestions(
  {
    train: path('the training JSONL file').meta({ description: 'JSONL file with the training examples.' }),
    validation: path('the validation JSONL file')
      .optional()
      .meta({ description: 'JSONL file with held-out examples for evaluation.' }),
  },
  'an object {"train": path, "validation": path}',
);

const dataDescription = 'a JSONL path or an object {"train": path, "validation": path}';

/**
 * A union's error would otherwise hide why an object was rejected (e.g. a misspelt `validation`), so for object
 * input the object branch's own messages are passed on.
 */
const data = z.union([path('a JSONL file'), dataFiles], {
  error: (issue) => {
    const objectBranchIssues = issue.code === 'invalid_union' ? issue.errors[1] : undefined;
    const isObject = typeof issue.input === 'object' && issue.input !== null && !Array.isArray(issue.input);
    if (!isObject || objectBranchIssues === undefined) return expected(dataDescription).error(issue);
    return objectBranchIssues
      .map((branchIssue) => [formatIssuePath(branchIssue.path), branchIssue.message].filter(Boolean).join(': '))
      .join('; ');
  },
});

const maxStepsExpectation = expected('-1 or a positive integer');
const divergenceFactorExpectation = expected('0 (off) or a number > 1');

/** Trainer settings, named and defaulted like Hugging Face TrainingArguments where they exist there. */
const trainingConfigFileShape = {
  model: path('the base model directory').meta({
    description: 'Directory of the base model (config.json and safetensors weights).',
  }),
  data: data.meta({
    description: 'Training data: one JSONL file, or separate training and validation files.',
  }),
  output_dir: path('the output directory').meta({
    description: 'Where checkpoints, the final adapter and logs are written.',
  }),
  overwrite_output_dir: flag(
    false,
    'Start a new run in an output_dir that already holds files: the files a previous run wrote there are removed, others are kept.',
  ),
  backend: z
    .enum(trainingBackends, expected(trainingBackends.map((backend) => `"${backend}"`).join(', ')))
    .default('auto')
    .meta({ description: 'TensorFlow.js backend; "auto" picks the fastest one available.' }),
  max_seq_length: positiveInteger()
    .default(512)
    .meta({ description: 'Examples are truncated (or packed) to this many tokens.' }),
  max_length: positiveInteger()
    .optional()
    .meta({ description: "TRL's name (SFTConfig) for max_seq_length, accepted in its place; giving both with different values is an error." }),
  packing: flag(false, 'Concatenate examples into full-length sequences instead of padding each one.'),
  validation_split: unitFraction()
    .default(0)
    .meta({ description: 'Fraction of the training file held out for evaluation when no validation file is given.' }),
  learning_rate: z
    .number(expected('a positive number'))
    .positive(expected('a positive number'))
    .default(2e-4)
    .meta({ description: 'Peak learning rate of the AdamW optimizer.' }),
  max_steps: z
    .union([z.literal(-1), z.int(maxStepsExpectation).min(1, maxStepsExpectation)], maxStepsExpectation)
    .default(-1)
    .meta({ description: 'Total optimizer steps; -1 trains for num_train_epochs instead.' }),
  num_train_epochs: z
    .number(expected('a positive number'))
    .positive(expected('a positive number'))
    .default(1)
    .meta({ description: 'Passes over the training data (fractions allowed) when max_steps is -1.' }),
  per_device_train_batch_size: positiveInteger()
    .default(4)
    .meta({ description: 'Examples per forward/backward pass.' }),
  gradient_accumulation_steps: positiveInteger()
    .default(1)
    .meta({ description: 'Batches whose gradients are summed before each optimizer step.' }),
  warmup_steps: nonNegativeInteger()
    .default(0)
    .meta({ description: 'Steps over which the learning rate ramps up linearly from 0.' }),
  lr_scheduler_type: z
    .enum(learningRateSchedulerTypes, expected('"linear", "cosine" or "constant"'))
    .default('linear')
    .meta({ description: 'How the learning rate decays after warmup.' }),
  weight_decay: nonNegativeNumber()
    .default(0)
    .meta({ description: 'AdamW decoupled weight decay.' }),
  max_grad_norm: nonNegativeNumber()
    .default(1)
    .meta({ description: 'Gradients are clipped to this global norm; 0 disables clipping.' }),
  logging_steps: positiveInteger()
    .default(10)
    .meta({ description: 'Log the training loss every this many optimizer steps.' }),
  eval_steps: positiveInteger()
    .nullable()
    .default(null)
    .meta({ description: 'Evaluate every this many steps; null uses logging_steps.' }),
  save_steps: positiveInteger()
    .default(500)
    .meta({ description: 'Save a checkpoint every this many optimizer steps.' }),
  save_total_limit: positiveInteger()
    .nullable()
    .default(null)
    .meta({ description: 'Keep at most this many checkpoints, deleting the oldest; null keeps all.' }),
  divergence_factor: z
    .union([z.literal(0), z.number(divergenceFactorExpectation).gt(1, divergenceFactorExpectation)], divergenceFactorExpectation)
    .default(3)
    .meta({
      description:
        'Stop as diverged when the smoothed training loss rises above this multiple of its lowest value and above its value at the first step; 0 disables the check.',
    }),
  zero_grad_norm_steps: nonNegativeInteger()
    .default(3)
    .meta({
      description:
        "Stop as diverged after this many consecutive steps whose gradient norm vanished (0, or under 1e-5 of the first step's) while the smoothed training loss stayed above its lowest; 0 disables the check.",
    }),
  seed: nonNegativeInteger()
    .default(42)
    .meta({ description: 'Seed for adapter initialisation, dropout and data shuffling.' }),
  gradient_checkpointing: flag(false, 'Recompute activations in the backward pass to save memory.'),
  strict: flag(false, 'Refuse, instead of warning about, NaN or infinite values in the model or adapter weights being loaded.'),
  lora: loraConfigFileSchema
    .prefault({})
    .meta({ description: 'The adapter to train, in adapter_config.json form; omitted fields take PEFT\'s defaults.' }),
  quantization: bitsAndBytesConfigFileSchema
    .nullable()
    .default(null)
    .meta({ description: 'Quantize the frozen base model (QLoRA); null trains on the unquantized model.' }),
};

const trainingConfigFileKeys = Object.keys(trainingConfigFileShape) as (keyof typeof trainingConfigFileShape)[];

const trainingConfigObject = strictObjectWithSuggestions(
  {
    ...camelCaseKeys(trainingConfigFileShape),
    lora: loraConfigSchema.prefault({}),
    quantization: bitsAndBytesConfigSchema.nullable().default(null),
  },
  'a training config object',
);
const trainingConfigFileObject = strictObjectWithSuggestions(trainingConfigFileShape, 'a training config object');

/**
 * A training config as used in code: camelCase keys (also inside `lora` and `quantization`), defaults filled in, and
 * the `maxLength` alias folded into `maxSeqLength`.
 */
export type TrainingConfig = Omit<z.output<typeof trainingConfigObject>, 'maxLength'>;
export type TrainingConfigInput = z.input<typeof trainingConfigObject>;
/** The snake_case form used in JSON and YAML files. */
export type TrainingConfigFile = z.output<typeof trainingConfigFileObject>;

const checkTrainingConfig: ConfigCheck<TrainingConfig> = (config, report, name) => {
  if (config.validationSplit > 0 && typeof config.data === 'object' && config.data.validation !== undefined) {
    report('validationSplit', `cannot be used together with \`${name('data')}.validation\`; use one or the other`);
  }
};

/**
 * Both names of the sequence length given with different values. Checked on the input as written, because once
 * defaults are filled in a max_seq_length left out cannot be told from one given as 512.
 */
function checkMaxLengthAlias(input: unknown, names: { alias: string; canonical: string }, source?: string): void {
  if (typeof input !== 'object' || input === null) return;
  const given = input as Record<string, unknown>;
  const [alias, canonical] = [given[names.alias], given[names.canonical]];
  if (alias === undefined || canonical === undefined || alias === canonical) return;
  const message = `${JSON.stringify(alias)} contradicts ${names.canonical} ${JSON.stringify(canonical)}; ${names.alias} is TRL's name for ${names.canonical}, give one of them`;
  throw new ConfigError([{ path: names.alias, message }], source);
}

export const trainingConfigSchema = trainingConfigObject
  .superRefine(camelCaseRefinement(checkTrainingConfig))
  .transform(({ maxLength, ...config }): TrainingConfig => ({ ...config, maxSeqLength: maxLength ?? config.maxSeqLength }));

export const trainingConfigFileSchema = trainingConfigFileObject
  .superRefine(snakeCaseRefinement(checkTrainingConfig, trainingConfigFromSnakeCase, trainingConfigFileKeys))
  .meta({
    title: 'peft-ts training config',
    description: 'Settings for fine-tuning a LoRA adapter with the peft-ts trainer (JSON or YAML).',
  });

export function trainingConfigFromSnakeCase(file: TrainingConfigFile): TrainingConfig {
  const { lora, quantization, max_length: maxLength, ...rest } = file;
  return {
    ...camelCaseKeys(rest),
    maxSeqLength: maxLength ?? rest.max_seq_length,
    lora: loraConfigFromSnakeCase(lora),
    quantization: quantization === null ? null : bitsAndBytesConfigFromSnakeCase(quantization),
  };
}

export function trainingConfigToSnakeCase(config: TrainingConfig): TrainingConfigFile {
  const { lora, quantization, ...rest } = config;
  return {
    ...snakeCaseKeys<Omit<TrainingConfigFile, 'lora' | 'quantization'>>(
      rest,
      trainingConfigFileKeys.filter((key) => key !== 'lora' && key !== 'quantization'),
    ),
    lora: loraConfigToSnakeCase(lora),
    quantization: quantization === null ? null : bitsAndBytesConfigToSnakeCase(quantization),
  };
}

export function createTrainingConfig(input: TrainingConfigInput): TrainingConfig {
  checkMaxLengthAlias(input, { alias: 'maxLength', canonical: 'maxSeqLength' });
  return parseWithSchema(trainingConfigSchema, input);
}

/**
 * Reads a training config given as an object with snake_case keys, e.g. what a YAML parser returned. Unknown keys
 * are always an error, since a silently ignored setting would change a training run.
 */
export function parseTrainingConfigObject(value: unknown, options: ReadOptions = {}): TrainingConfig {
  checkMaxLengthAlias(value, { alias: 'max_length', canonical: 'max_seq_length' }, options.source);
  return trainingConfigFromSnakeCase(parseFileObject(trainingConfigFileSchema, value, { ...options, strict: true }));
}

export function parseTrainingConfigJson(text: string, options: ReadOptions = {}): TrainingConfig {
  return parseTrainingConfigObject(parseJsonText(text, options.source), options);
}

/** JSON with snake_case keys in the style of the other config files, floats written as Python would. */
export function serializeTrainingConfig(config: TrainingConfigInput): string {
  const file = trainingConfigToSnakeCase(createTrainingConfig(config));
  return formatPythonJson({
    ...file,
    learning_rate: new PythonFloat(file.learning_rate),
    num_train_epochs: new PythonFloat(file.num_train_epochs),
    weight_decay: new PythonFloat(file.weight_decay),
    max_grad_norm: new PythonFloat(file.max_grad_norm),
    validation_split: new PythonFloat(file.validation_split),
    divergence_factor: new PythonFloat(file.divergence_factor),
    lora: loraConfigPythonValue(file.lora),
    quantization: file.quantization === null ? null : bitsAndBytesConfigPythonValue(file.quantization),
  });
}
