import { describe, expect, it } from 'vitest';
import { createBitsAndBytesConfig } from './bits-and-bytes-config.js';
import { configErrorMessage } from './test/config-error-message.js';
import { createLoraConfig } from './lora-config.js';
import {
  createTrainingConfig,
  parseTrainingConfigJson,
  parseTrainingConfigObject,
  serializeTrainingConfig,
  type TrainingConfig,
  trainingConfigFromSnakeCase,
  trainingConfigToSnakeCase,
} from './training-config.js';

const source = 'train.yaml';
const required = { model: 'models/mistral', data: 'data/train.jsonl', output_dir: 'runs/first' };
const camelRequired = { model: 'models/mistral', data: 'data/train.jsonl', outputDir: 'runs/first' };
const parse = (extra: Record<string, unknown>) => parseTrainingConfigObject({ ...required, ...extra }, { source });

describe('trainingConfig', () => {
  it('fills in the defaults', () => {
    const expected: TrainingConfig = {
      model: 'models/mistral',
      data: 'data/train.jsonl',
      outputDir: 'runs/first',
      overwriteOutputDir: false,
      backend: 'auto',
      maxSeqLength: 512,
      packing: false,
      validationSplit: 0,
      learningRate: 2e-4,
      maxSteps: -1,
      numTrainEpochs: 1,
      perDeviceTrainBatchSize: 4,
      gradientAccumulationSteps: 1,
      warmupSteps: 0,
      lrSchedulerType: 'linear',
      weightDecay: 0,
      maxGradNorm: 1,
      loggingSteps: 10,
      evalSteps: null,
      saveSteps: 500,
      saveTotalLimit: null,
      divergenceFactor: 3,
      zeroGradNormSteps: 3,
      seed: 42,
      gradientCheckpointing: false,
      strict: false,
      lora: createLoraConfig(),
      quantization: null,
    };
    expect(parse({})).toEqual(expected);
    expect(createTrainingConfig({ model: 'models/mistral', data: 'data/train.jsonl', outputDir: 'runs/first' })).toEqual(
      expected,
    );
  });

  it("accepts TRL's max_length for max_seq_length, and both only when they agree", () => {
    expect(parse({ max_length: 1024 }).maxSeqLength).toBe(1024);
    expect(parse({ max_length: 1024, max_seq_length: 1024 }).maxSeqLength).toBe(1024);
    expect(parseTrainingConfigJson(JSON.stringify({ ...required, max_length: 64 })).maxSeqLength).toBe(64);
    expect(createTrainingConfig({ ...camelRequired, maxLength: 256 }).maxSeqLength).toBe(256);
    expect(configErrorMessage(() => parse({ max_length: 1024, max_seq_length: 512 }))).toBe(
      "train.yaml: max_length: 1024 contradicts max_seq_length 512; max_length is TRL's name for max_seq_length, give one of them",
    );
    expect(configErrorMessage(() => createTrainingConfig({ ...camelRequired, maxLength: 1, maxSeqLength: 2 }))).toBe(
      "maxLength: 1 contradicts maxSeqLength 2; maxLength is TRL's name for maxSeqLength, give one of them",
    );
    expect(configErrorMessage(() => parse({ max_length: 0 }))).toBe('train.yaml: max_length: expected a positive integer, got 0');
    // The alias is read, never written: a saved config names the sequence length once.
    expect(JSON.parse(serializeTrainingConfig(parse({ max_length: 128 })))).toMatchObject({ max_seq_length: 128 });
    expect(serializeTrainingConfig(parse({ max_length: 128 }))).not.toContain('max_length');
  });

  it('reads nested LoRA and quantization settings in their file form', () => {
    const config = parse({
      data: { train: 'train.jsonl', validation: 'valid.jsonl' },
      lora: { r: 16, lora_alpha: 32, target_modules: 'all-linear', use_dora: true },
      quantization: { load_in_4bit: true, bnb_4bit_quant_type: 'nf4' },
    });
    expect(config.data).toEqual({ train: 'train.jsonl', validation: 'valid.jsonl' });
    expect(config.lora).toEqual(createLoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear', useDora: true }));
    expect(config.quantization).toEqual(createBitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }));
  });

  it('round-trips through its JSON form', () => {
    const config = parse({
      learning_rate: 1e-5,
      max_steps: 100,
      lr_scheduler_type: 'cosine',
      lora: { r: 4, lora_dropout: 0.05 },
      quantization: { load_in_8bit: true },
    });
    const text = serializeTrainingConfig(config);
    expect(text).toContain('"learning_rate": 1e-05,');
    expect(text).toContain('"num_train_epochs": 1.0,');
    expect(text).toContain('    "lora_dropout": 0.05,');
    expect(text).toContain('    "llm_int8_threshold": 6.0,');
    expect(parseTrainingConfigJson(text, { source: 'config.json' })).toEqual(config);
    expect(trainingConfigFromSnakeCase(trainingConfigToSnakeCase(config))).toEqual(config);
  });

  it.each([
    [{ learning_rat: 1e-4 }, 'unknown key "learning_rat" (did you mean "learning_rate"?)'],
    [{ lora: { lora_alpah: 16 } }, 'lora: unknown key "lora_alpah" (did you mean "lora_alpha"?)'],
    [{ lora: { peft_version: '0.18.0' } }, 'lora: unknown key "peft_version"'],
    [{ quantization: { load_in_4bits: true } }, 'quantization: unknown key "load_in_4bits" (did you mean "load_in_4bit"?)'],
    [{ data: { train: 'a.jsonl', valdation: 'b.jsonl' } }, 'data: unknown key "valdation" (did you mean "validation"?)'],
    [{ data: { validation: 'b.jsonl' } }, 'data: train: missing; expected a path to the training JSONL file'],
    [{ data: 5 }, 'data: expected a JSONL path or an object {"train": path, "validation": path}, got 5'],
    [{ data: '' }, 'data: expected a path to a JSONL file, got ""'],
    [{ lora: { target_modules: 5 } }, 'lora.target_modules: expected a list of names or a regex string, got 5'],
    [{ lora: { target_modules: 'q', layers_to_transform: [0] } }, 'lora.layers_to_transform: cannot be used when `target_modules` is a str (a regex); list the module names instead'],
    [{ lora: { layer_replication: [[4, 0]] } }, 'lora.layer_replication[0]: range 0 [4, 0] is reversed; expected start < end'],
    [{ quantization: { load_in_4bit: true, load_in_8bit: true } }, 'quantization.load_in_4bit: `load_in_4bit` and `load_in_8bit` are both true, but only one can be used at the same time'],
    [{ max_steps: 0 }, 'max_steps: expected -1 or a positive integer, got 0'],
    [{ learning_rate: 0 }, 'learning_rate: expected a positive number, got 0'],
    [{ backend: 'gpu' }, 'backend: expected "auto", "tensorflow", "webgpu", "native", "wasm", "cpu", got "gpu"'],
    [{ lr_scheduler_type: 'polynomial' }, 'lr_scheduler_type: expected "linear", "cosine" or "constant", got "polynomial"'],
    [{ validation_split: 1 }, 'validation_split: expected a number in [0, 1), got 1'],
    [{ eval_steps: 0 }, 'eval_steps: expected a positive integer, got 0'],
    [{ seed: -1 }, 'seed: expected a non-negative integer, got -1'],
    [{ warmup_steps: 1.5 }, 'warmup_steps: expected a non-negative integer, got 1.5'],
    [{ divergence_factor: 1 }, 'divergence_factor: expected 0 (off) or a number > 1, got 1'],
    [{ divergence_factor: -2 }, 'divergence_factor: expected 0 (off) or a number > 1, got -2'],
    [{ zero_grad_norm_steps: 2.5 }, 'zero_grad_norm_steps: expected a non-negative integer, got 2.5'],
    [{ overwrite_output_dir: 'yes' }, 'overwrite_output_dir: expected true or false, got "yes"'],
    [
      { data: { train: 'a.jsonl', validation: 'b.jsonl' }, validation_split: 0.1 },
      'validation_split: cannot be used together with `data.validation`; use one or the other',
    ],
  ])('reports %j', (extra, expected) => {
    expect(configErrorMessage(() => parse(extra))).toBe(`${source}: ${expected}`);
  });

  it('reports missing required settings', () => {
    expect(configErrorMessage(() => parseTrainingConfigObject({}, { source }))).toBe(
      [
        'train.yaml: model: missing; expected a path to the base model directory',
        'train.yaml: data: missing; expected a JSONL path or an object {"train": path, "validation": path}',
        'train.yaml: output_dir: missing; expected a path to the output directory',
      ].join('\n'),
    );
  });

  it('names the file and position of a JSON syntax error', () => {
    expect(configErrorMessage(() => parseTrainingConfigJson('{"model": "m",\n "seed": 4 2}', { source: 'train.json' }))).toBe(
      "train.json: invalid JSON at line 2, column 12: expected ',' or '}' after a property value",
    );
  });

  it('reads the run-safety settings, 0 turning each divergence check off', () => {
    expect(parse({ overwrite_output_dir: true, divergence_factor: 0, zero_grad_norm_steps: 0 })).toMatchObject({
      overwriteOutputDir: true,
      divergenceFactor: 0,
      zeroGradNormSteps: 0,
    });
    expect(parse({ divergence_factor: 1.5 }).divergenceFactor).toBe(1.5);
  });

  it('accepts a validation split when there is no validation file', () => {
    expect(parse({ validation_split: 0.1 }).validationSplit).toBe(0.1);
  });
});
