import { Option, type Command } from 'commander';
import { learningRateSchedulerTypes, type TrainingConfigInput, trainingBackends } from '@peft-ts/config';
import { addLoraOptions, loraOverrides } from './lora-options.js';
import { numberOption } from './numeric-option.js';

type TrainingOptionSpec = {
  /** The config key it overrides; the flag is its kebab-case spelling (`outputDir` → `--output-dir`). */
  readonly key: keyof TrainingConfigInput & string;
  /** The value's placeholder in --help; none for a switch. */
  readonly value?: `<${string}>`;
  readonly description: string;
  readonly parse?: (text: string) => number;
  readonly choices?: readonly string[];
};

/** The command-line options of `train`, each a config-file key: the one list the options and overrides come from. */
const trainingOptionSpecs = [
  { key: 'model', value: '<dir>', description: 'base model directory (config.json, safetensors, tokenizer.json)' },
  { key: 'data', value: '<file>', description: 'training data (JSONL: text, messages, prompt/completion or input_ids)' },
  { key: 'outputDir', value: '<dir>', description: 'where the adapter, checkpoints, metrics and report go' },
  { key: 'overwriteOutputDir', description: "start over in an output dir holding a previous run (removes only that run's files)" },
  { key: 'backend', value: '<name>', description: 'tfjs backend', choices: trainingBackends },
  { key: 'learningRate', value: '<rate>', description: 'peak learning rate', parse: numberOption('positiveNumber') },
  { key: 'maxSteps', value: '<steps>', description: 'optimizer steps (overrides epochs)', parse: numberOption('stepCount') },
  { key: 'numTrainEpochs', value: '<epochs>', description: 'epochs when max_steps is not set', parse: numberOption('positiveNumber') },
  { key: 'perDeviceTrainBatchSize', value: '<size>', description: 'sequences per micro-batch', parse: numberOption('positiveInteger') },
  { key: 'gradientAccumulationSteps', value: '<steps>', description: 'micro-batches per optimizer step', parse: numberOption('positiveInteger') },
  { key: 'warmupSteps', value: '<steps>', description: 'linear warm-up steps', parse: numberOption('nonNegativeInteger') },
  { key: 'lrSchedulerType', value: '<type>', description: 'learning-rate schedule', choices: learningRateSchedulerTypes },
  { key: 'weightDecay', value: '<decay>', description: 'AdamW weight decay', parse: numberOption('nonNegativeNumber') },
  { key: 'maxGradNorm', value: '<norm>', description: 'gradient clipping norm', parse: numberOption('nonNegativeNumber') },
  { key: 'loggingSteps', value: '<steps>', description: 'log every N steps', parse: numberOption('positiveInteger') },
  { key: 'evalSteps', value: '<steps>', description: 'evaluate every N steps', parse: numberOption('positiveInteger') },
  { key: 'saveSteps', value: '<steps>', description: 'checkpoint every N steps', parse: numberOption('positiveInteger') },
  { key: 'saveTotalLimit', value: '<count>', description: 'checkpoints kept (the best one is always kept too)', parse: numberOption('positiveInteger') },
  {
    key: 'divergenceFactor',
    value: '<factor>',
    description: 'stop when the smoothed loss exceeds this multiple of its lowest value (0: off)',
    parse: numberOption('zeroOrAboveOne'),
  },
  {
    key: 'zeroGradNormSteps',
    value: '<steps>',
    description: 'stop after this many consecutive steps with a vanished gradient norm (0: off)',
    parse: numberOption('nonNegativeInteger'),
  },
  { key: 'seed', value: '<seed>', description: 'random seed', parse: numberOption('nonNegativeInteger') },
  { key: 'gradientCheckpointing', description: 'recompute activations in backward (less memory)' },
  { key: 'strict', description: 'refuse, instead of warning about, NaN/Inf in the model weights' },
  { key: 'maxSeqLength', value: '<length>', description: 'tokens per sequence', parse: numberOption('positiveInteger') },
  { key: 'packing', description: 'pack examples into max_seq_length blocks' },
  { key: 'validationSplit', value: '<fraction>', description: 'held-out fraction when there is no validation file', parse: numberOption('fraction') },
] as const satisfies readonly TrainingOptionSpec[];

type Spec = (typeof trainingOptionSpecs)[number];

/** Command-line options of `train` as commander parses them (camelCase); the LoRA ones are read by `loraOverrides`. */
export type TrainingOptions = { config?: string } & {
  [Entry in Spec as Entry['key']]?: Entry extends { parse: unknown } ? number : Entry extends { value: string } ? string : boolean;
};

const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;

export function addTrainingOptions(command: Command): Command {
  command.option('-c, --config <file>', 'YAML or JSON config (Hugging Face TrainingArguments names, plus model, data, lora, quantization)');
  for (const spec of trainingOptionSpecs as readonly TrainingOptionSpec[]) {
    const option = new Option(spec.value ? `${flagOf(spec.key)} ${spec.value}` : flagOf(spec.key), spec.description);
    if (spec.parse) option.argParser(spec.parse);
    if (spec.choices) option.choices(spec.choices);
    command.addOption(option);
  }
  return addLoraOptions(command);
}

/** The options given on the command line, as config keys: top-level ones camelCase, `lora` ones snake_case as in a file. */
export function trainingOverrides(options: TrainingOptions): { overrides: Record<string, unknown>; loraOverrides: Record<string, unknown> } {
  const given = options as Record<string, unknown>;
  const overrides = Object.fromEntries(trainingOptionSpecs.filter(({ key }) => given[key] !== undefined).map(({ key }) => [key, given[key]]));
  return { overrides, loraOverrides: loraOverrides(given) };
}
