import { Option, type Command } from 'commander';
import { learningRateSchedulerTypes, trainingBackends } from '@peft-ts/config';
import { numberOption } from './numeric-option.js';

/** Command-line options of `train` (camelCase as commander parses them); each is also a config-file key. */
export type TrainingOptions = {
  config?: string;
  model?: string;
  data?: string;
  outputDir?: string;
  overwriteOutputDir?: boolean;
  backend?: string;
  learningRate?: number;
  maxSteps?: number;
  numTrainEpochs?: number;
  perDeviceTrainBatchSize?: number;
  gradientAccumulationSteps?: number;
  warmupSteps?: number;
  lrSchedulerType?: string;
  weightDecay?: number;
  maxGradNorm?: number;
  loggingSteps?: number;
  evalSteps?: number;
  saveSteps?: number;
  saveTotalLimit?: number;
  divergenceFactor?: number;
  zeroGradNormSteps?: number;
  seed?: number;
  gradientCheckpointing?: boolean;
  strict?: boolean;
  maxSeqLength?: number;
  packing?: boolean;
  validationSplit?: number;
};

const overrideKeys: readonly (keyof TrainingOptions)[] = [
  'model',
  'data',
  'outputDir',
  'overwriteOutputDir',
  'backend',
  'learningRate',
  'maxSteps',
  'numTrainEpochs',
  'perDeviceTrainBatchSize',
  'gradientAccumulationSteps',
  'warmupSteps',
  'lrSchedulerType',
  'weightDecay',
  'maxGradNorm',
  'loggingSteps',
  'evalSteps',
  'saveSteps',
  'saveTotalLimit',
  'divergenceFactor',
  'zeroGradNormSteps',
  'seed',
  'gradientCheckpointing',
  'strict',
  'maxSeqLength',
  'packing',
  'validationSplit',
];

export function addTrainingOptions(command: Command): Command {
  return command
    .option('-c, --config <file>', 'YAML or JSON config (Hugging Face TrainingArguments names, plus model, data, lora, quantization)')
    .option('--model <dir>', 'base model directory (config.json, safetensors, tokenizer.json)')
    .option('--data <file>', 'training data (JSONL: text, messages, prompt/completion or input_ids)')
    .option('--output-dir <dir>', 'where the adapter, checkpoints, metrics and report go')
    .option('--overwrite-output-dir', "start over in an output dir holding a previous run (removes only that run's files)")
    .addOption(new Option('--backend <name>', 'tfjs backend').choices([...trainingBackends]))
    .option('--learning-rate <rate>', 'peak learning rate', numberOption('positiveNumber'))
    .option('--max-steps <steps>', 'optimizer steps (overrides epochs)', numberOption('stepCount'))
    .option('--num-train-epochs <epochs>', 'epochs when max_steps is not set', numberOption('positiveNumber'))
    .option('--per-device-train-batch-size <size>', 'sequences per micro-batch', numberOption('positiveInteger'))
    .option('--gradient-accumulation-steps <steps>', 'micro-batches per optimizer step', numberOption('positiveInteger'))
    .option('--warmup-steps <steps>', 'linear warm-up steps', numberOption('nonNegativeInteger'))
    .addOption(new Option('--lr-scheduler-type <type>', 'learning-rate schedule').choices([...learningRateSchedulerTypes]))
    .option('--weight-decay <decay>', 'AdamW weight decay', numberOption('nonNegativeNumber'))
    .option('--max-grad-norm <norm>', 'gradient clipping norm', numberOption('nonNegativeNumber'))
    .option('--logging-steps <steps>', 'log every N steps', numberOption('positiveInteger'))
    .option('--eval-steps <steps>', 'evaluate every N steps', numberOption('positiveInteger'))
    .option('--save-steps <steps>', 'checkpoint every N steps', numberOption('positiveInteger'))
    .option('--save-total-limit <count>', 'checkpoints kept (the best one is always kept too)', numberOption('positiveInteger'))
    .option('--divergence-factor <factor>', 'stop when the smoothed loss exceeds this multiple of its lowest value (0: off)', numberOption('zeroOrAboveOne'))
    .option('--zero-grad-norm-steps <steps>', 'stop after this many consecutive steps with a vanished gradient norm (0: off)', numberOption('nonNegativeInteger'))
    .option('--seed <seed>', 'random seed', numberOption('nonNegativeInteger'))
    .option('--gradient-checkpointing', 'recompute activations in backward (less memory)')
    .option('--strict', 'refuse, instead of warning about, NaN/Inf in the model weights')
    .option('--max-seq-length <length>', 'tokens per sequence', numberOption('positiveInteger'))
    .option('--packing', 'pack examples into max_seq_length blocks')
    .option('--validation-split <fraction>', 'held-out fraction when there is no validation file', numberOption('fraction'));
}

/** The options given on the command line, as config keys (camelCase; the config reader converts). */
export function trainingOverrides(options: TrainingOptions): Record<string, unknown> {
  return Object.fromEntries(overrideKeys.filter((key) => options[key] !== undefined).map((key) => [key, options[key]]));
}
