import { z } from 'zod';
import { camelCaseKeys, snakeCaseKeys } from './case-conversion.js';
import {
  camelCaseRefinement,
  type ConfigCheck,
  expected,
  type LenientReadOptions,
  parseFileJson,
  parseFileObject,
  parseWithSchema,
  snakeCaseRefinement,
  strictObjectWithSuggestions,
} from './config-format.js';
import {
  flag,
  caseInsensitiveWord,
  jsonRecord,
  nonNegativeInteger,
  positiveInteger,
  stringList,
  unitFraction,
} from './field-schemas.js';
import { compareCodePoints, formatPythonJson, PythonFloat, type PythonJsonValue } from './python-json.js';

/** PEFT's `TaskType` values; they select the PeftModel subclass and some automatic `modules_to_save`. */
export const taskTypes = [
  'SEQ_CLS',
  'SEQ_2_SEQ_LM',
  'CAUSAL_LM',
  'TOKEN_CLS',
  'QUESTION_ANS',
  'FEATURE_EXTRACTION',
] as const;
export type TaskType = (typeof taskTypes)[number];

export const loraBiasModes = ['none', 'all', 'lora_only'] as const;
export type LoraBias = (typeof loraBiasModes)[number];

const loftqFileShape = {
  loftq_bits: z
    .literal([2, 4, 8], expected('2, 4 or 8'))
    .optional()
    .meta({ description: 'Bit width of the quantization that LoftQ alternates with the low-rank fit.' }),
  loftq_iter: positiveInteger()
    .optional()
    .meta({ description: 'How many quantize-then-fit rounds LoftQ runs.' }),
};
const loftqDescription =
  'Settings for init_lora_weights "loftq": {} when unused, else {"loftq_bits": 4, "loftq_iter": 1} style.';
const loftqFileSchema = strictObjectWithSuggestions(loftqFileShape, 'a LoftQ settings object');
const loftqSchema = strictObjectWithSuggestions(camelCaseKeys(loftqFileShape), 'a LoftQ settings object');

/** Half-open `[start, end)` range of original layer indices; a reversed range is rejected by the list below. */
const layerRange = z
  .tuple([nonNegativeInteger(), nonNegativeInteger()], expected('a [start, end] pair of layer indices'))
  .meta({ minItems: 2, maxItems: 2 });

/** "gaussian" in any case, as PEFT compares it lower-cased; normalised so code can test for 'gaussian'. */
const gaussianInitialization = z
  .string()
  .regex(caseInsensitiveWord('gaussian'))
  .transform(() => 'gaussian' as const);

/** The 24 keys of a PEFT 0.10 `adapter_config.json`, in LoraConfig's declaration order, with PEFT's defaults. */
const loraConfigFileShape = {
  peft_type: z
    .literal('LORA', expected('"LORA" (only LoRA adapters are supported)'))
    .default('LORA')
    .meta({ description: 'Adapter method; always "LORA" for this config.' }),
  auto_mapping: jsonRecord()
    .nullable()
    .default(null)
    .meta({
      description: 'Class and library of a base model that is not a transformers task model; PEFT fills it in at save time when task_type is null.',
    }),
  base_model_name_or_path: z
    .string(expected('a string'))
    .nullable()
    .default(null)
    .meta({ description: 'Hub id or local path of the base model the adapter was trained on.' }),
  revision: z
    .string(expected('a string'))
    .nullable()
    .default(null)
    .meta({ description: 'Base model revision; informational only in PEFT 0.10.' }),
  task_type: z
    .enum(taskTypes, expected(`one of ${taskTypes.map((task) => `"${task}"`).join(', ')} or null`))
    .nullable()
    .default(null)
    .meta({ description: 'Kind of model head the adapter is used with; null for a plain module.' }),
  inference_mode: flag(false, 'Whether the adapter is frozen. Saved files always say true; loading decides trainability.'),
  r: positiveInteger()
    .default(8)
    .meta({ description: 'Rank of the low-rank update (inner dimension of lora_A and lora_B).' }),
  target_modules: z
    .union([stringList('a list of names'), z.string()], expected('a list of names or a regex string'))
    .nullable()
    .default(null)
    .meta({
      description: 'Modules to adapt: a list of names matched against the end of each module path, a regex matched against the whole path, or "all-linear". Null uses the defaults for the model type.',
    }),
  lora_alpha: z
    .number(expected('a number'))
    .default(8)
    .meta({ description: 'Numerator of the update scaling: lora_alpha / r (or / sqrt(r) with use_rslora).' }),
  lora_dropout: unitFraction()
    .default(0)
    .meta({ description: 'Dropout probability applied to the adapter input; 0 disables it.' }),
  fan_in_fan_out: flag(false, 'Set when the target layer stores its weight as (in, out), like GPT-2 Conv1D.'),
  bias: z
    .enum(loraBiasModes, expected('"none", "all" or "lora_only"'))
    .default('none')
    .meta({ description: 'Which biases become trainable: none, all of them, or only those of adapted layers.' }),
  use_rslora: flag(false, 'Rank-stabilised scaling lora_alpha / sqrt(r) instead of lora_alpha / r.'),
  modules_to_save: stringList('a list of module names')
    .nullable()
    .default(null)
    .meta({ description: 'Modules (besides the adapter) trained in full and saved with it, e.g. a classifier head.' }),
  init_lora_weights: z
    .union(
      [z.boolean(), gaussianInitialization, z.literal('loftq')],
      expected('true, false, "gaussian" or "loftq"'),
    )
    .prefault(true)
    .meta({
      description: 'Adapter initialisation: true (lora_B zero, so the model starts unchanged), "gaussian", "loftq", or false (random, not a no-op).',
    }),
  layers_to_transform: z
    .union([z.array(nonNegativeInteger()), nonNegativeInteger()], expected('a layer index or a list of layer indices'))
    .nullable()
    .default(null)
    .meta({ description: 'Only adapt modules in these layer indices; needs a list target_modules.' }),
  layers_pattern: z
    .union([stringList('a list of names'), z.string()], expected('a name or a list of names'))
    .nullable()
    .default(null)
    .meta({ description: 'Name of the layer container (e.g. "layers") used to find layer indices for layers_to_transform.' }),
  rank_pattern: z
    .record(z.string(), positiveInteger(), expected('an object mapping module names or patterns to ranks'))
    .default(() => ({}))
    .meta({ description: 'Per-module rank overrides, keyed by module name or regex.' }),
  alpha_pattern: z
    .record(z.string(), z.number(expected('a number')), expected('an object mapping module names or patterns to alphas'))
    .default(() => ({}))
    .meta({ description: 'Per-module lora_alpha overrides, keyed by module name or regex.' }),
  megatron_config: jsonRecord()
    .nullable()
    .default(null)
    .meta({ description: 'Megatron TransformerConfig arguments for adapting Megatron parallel linear layers.' }),
  megatron_core: z
    .string(expected('a module name'))
    .nullable()
    .default('megatron.core')
    .meta({ description: 'Python module that provides Megatron core.' }),
  loftq_config: loftqFileSchema
    .nullable()
    .default(() => ({}))
    .meta({ description: loftqDescription }),
  use_dora: flag(false, 'Use DoRA: a learned per-output magnitude times the normalised adapted weight.'),
  layer_replication: z
    .array(layerRange, expected('a list of [start, end] layer ranges'))
    .superRefine((ranges, context) => {
      ranges.forEach(([start, end], index) => {
        // A negative index is already reported; calling its range reversed too would only add noise. An empty range
        // adds no layer, which is never what was meant (an empty list is how PEFT says "no replication").
        if (start >= end && end >= 0) {
          context.addIssue({
            code: 'custom',
            path: [index],
            message: `range ${index} [${start}, ${end}] is ${start === end ? 'empty' : 'reversed'}; expected start < end`,
          });
        }
      });
    })
    .nullable()
    .default(null)
    .meta({
      description: 'Build a deeper model by stacking copies of base layers: the half-open [start, end) ranges of original layer indices are concatenated in order.',
    }),
};

const loraConfigFileKeys = Object.keys(loraConfigFileShape) as (keyof typeof loraConfigFileShape)[];

const loraConfigObject = strictObjectWithSuggestions(
  { ...camelCaseKeys(loraConfigFileShape), loftqConfig: loftqSchema.nullable().default(() => ({})) },
  'a LoRA config object',
);
const loraConfigFileObject = strictObjectWithSuggestions(loraConfigFileShape, 'a LoRA config object');

/** A LoRA config as used in code: camelCase keys, every default filled in. */
export type LoraConfig = z.output<typeof loraConfigObject>;
/** What createLoraConfig accepts: any subset of LoraConfig. */
export type LoraConfigInput = z.input<typeof loraConfigObject>;
/** A LoRA config in the snake_case form of adapter_config.json. */
export type LoraConfigFile = z.output<typeof loraConfigFileObject>;

/** PEFT 0.10's `LoraConfig.__post_init__` checks, in its order (spec A.2), plus the LoftQ requirement. */
const checkLoraConfig: ConfigCheck<LoraConfig> = (config, report, name) => {
  if (typeof config.targetModules === 'string') {
    const reason = `cannot be used when \`${name('targetModules')}\` is a str (a regex); list the module names instead`;
    if (config.layersToTransform !== null) report('layersToTransform', reason);
    if (config.layersPattern !== null) report('layersPattern', reason);
  }
  // An empty dict is falsy in Python, so PEFT only rejects a megatron config that has entries.
  if (config.useDora && config.megatronConfig !== null && Object.keys(config.megatronConfig).length > 0) {
    report('useDora', `DoRA does not support megatron_core, please set \`${name('useDora')}\` to false`);
  }
  if (config.initLoraWeights === 'loftq' && config.loftqConfig === null) {
    report('loftqConfig', `must be set when \`${name('initLoraWeights')}\` is "loftq"`);
  }
};

export const loraConfigSchema = loraConfigObject.superRefine(camelCaseRefinement(checkLoraConfig));

export const loraConfigFileSchema = loraConfigFileObject
  .superRefine(snakeCaseRefinement(checkLoraConfig, loraConfigFromSnakeCase, loraConfigFileKeys))
  .meta({
    title: 'PEFT 0.10 LoRA adapter config (adapter_config.json)',
    description: 'The LoraConfig fields PEFT 0.10 writes to adapter_config.json; omitted fields take PEFT\'s defaults.',
  });

export function loraConfigFromSnakeCase(file: LoraConfigFile): LoraConfig {
  const { loftq_config: loftqConfig, ...rest } = file;
  return { ...camelCaseKeys(rest), loftqConfig: loftqConfig === null ? null : camelCaseKeys(loftqConfig) };
}

export function loraConfigToSnakeCase(config: LoraConfig): LoraConfigFile {
  const { loftqConfig, ...rest } = config;
  return {
    ...snakeCaseKeys<Omit<LoraConfigFile, 'loftq_config'>>(
      rest,
      loraConfigFileKeys.filter((key) => key !== 'loftq_config'),
    ),
    loftq_config:
      loftqConfig === null
        ? null
        : snakeCaseKeys<NonNullable<LoraConfigFile['loftq_config']>>(loftqConfig, ['loftq_bits', 'loftq_iter']),
  };
}

/** Validates a config written in code and fills in PEFT's defaults. */
export function createLoraConfig(input: LoraConfigInput = {}): LoraConfig {
  return parseWithSchema(loraConfigSchema, input);
}

const unknownLoraKeysNote = 'PEFT 0.10 has no such LoraConfig fields; newer PEFT versions write some of them';

/** Reads the object of an adapter_config.json (snake_case keys). */
export function parseLoraConfigObject(value: unknown, options: LenientReadOptions = {}): LoraConfig {
  return loraConfigFromSnakeCase(parseFileObject(loraConfigFileSchema, value, options, unknownLoraKeysNote));
}

/** Reads the text of an adapter_config.json. */
export function parseLoraConfigJson(text: string, options: LenientReadOptions = {}): LoraConfig {
  return loraConfigFromSnakeCase(parseFileJson(loraConfigFileSchema, text, options, unknownLoraKeysNote));
}

/**
 * The file form as Python values: `lora_dropout` is a Python float, and `target_modules` (a Python set, so in no
 * particular order in PEFT's files) is de-duplicated and sorted.
 */
export function loraConfigPythonValue(file: LoraConfigFile): PythonJsonValue {
  const targetModules = Array.isArray(file.target_modules)
    ? [...new Set(file.target_modules)].sort(compareCodePoints)
    : file.target_modules;
  return { ...file, lora_dropout: new PythonFloat(file.lora_dropout), target_modules: targetModules };
}

/** adapter_config.json text, byte-compatible with PEFT 0.10 (no trailing newline). */
export function serializeLoraConfig(config: LoraConfigInput): string {
  const file = loraConfigToSnakeCase(createLoraConfig(config));
  // PEFT's save_pretrained writes inference_mode true whatever the in-memory value.
  return formatPythonJson(loraConfigPythonValue({ ...file, inference_mode: true }));
}
