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
import { flag, nonNegativeNumber, stringList } from './field-schemas.js';
import { formatPythonJson, PythonFloat, type PythonJsonValue } from './python-json.js';

export const computeDtypes = ['float32', 'bfloat16', 'float16'] as const;
export type ComputeDtype = (typeof computeDtypes)[number];

export const quantTypes = ['nf4', 'fp4'] as const;
export type QuantType = (typeof quantTypes)[number];

export const quantStorageDtypes = ['uint8', 'bfloat16', 'float16', 'float32'] as const;
export type QuantStorageDtype = (typeof quantStorageDtypes)[number];

const quoted = (values: readonly string[]) => values.map((value) => `"${value}"`).join(', ');

/** transformers' `BitsAndBytesConfig` fields (4.39) with its defaults. */
const bitsAndBytesConfigFileShape = {
  load_in_8bit: flag(false, 'Quantize Linear weights to int8 with LLM.int8() (row-wise absmax, fp16 outlier columns).'),
  load_in_4bit: flag(false, 'Quantize Linear weights to 4 bits in blocks of 64 (NF4 or FP4).'),
  llm_int8_threshold: nonNegativeNumber()
    .default(6)
    .meta({ description: 'LLM.int8(): activations at or above this magnitude are multiplied in fp16; 0 disables that.' }),
  llm_int8_skip_modules: stringList('a list of module names')
    .nullable()
    .default(null)
    .meta({ description: 'Modules left unquantized; null keeps only the output head (lm_head) unquantized.' }),
  llm_int8_enable_fp32_cpu_offload: flag(false, 'Allow parts of the model offloaded to the CPU to stay unquantized in float32.'),
  llm_int8_has_fp16_weight: flag(false, 'Keep fp16 master weights and re-quantize them on every forward pass (int8 training).'),
  bnb_4bit_compute_dtype: z
    .enum(computeDtypes, expected(`one of ${quoted(computeDtypes)} or null`))
    .nullable()
    .default(null)
    .meta({ description: 'Data type of the 4-bit matmul; null means float32.' }),
  bnb_4bit_quant_type: z
    .enum(quantTypes, expected(quoted(quantTypes)))
    .default('fp4')
    .meta({ description: '4-bit code book: nf4 (normal-distribution levels, used by QLoRA) or fp4.' }),
  bnb_4bit_use_double_quant: flag(false, 'Also quantize the per-block scales to 8 bits (saves about 0.37 bits per parameter).'),
  bnb_4bit_quant_storage: z
    .enum(quantStorageDtypes, expected(quoted(quantStorageDtypes)))
    .default('uint8')
    .meta({ description: 'Element type the packed 4-bit bytes are viewed as; FSDP needs it to match the model dtype.' }),
};

const bitsAndBytesConfigFileKeys = Object.keys(bitsAndBytesConfigFileShape) as (keyof typeof bitsAndBytesConfigFileShape)[];

const bitsAndBytesConfigObject = strictObjectWithSuggestions(
  camelCaseKeys(bitsAndBytesConfigFileShape),
  'a bitsandbytes quantization config object',
);
const bitsAndBytesConfigFileObject = strictObjectWithSuggestions(
  bitsAndBytesConfigFileShape,
  'a bitsandbytes quantization config object',
);

/** A bitsandbytes quantization config as used in code: camelCase keys, every default filled in. */
export type BitsAndBytesConfig = z.output<typeof bitsAndBytesConfigObject>;
export type BitsAndBytesConfigInput = z.input<typeof bitsAndBytesConfigObject>;
/** The snake_case form used in files. */
export type BitsAndBytesConfigFile = z.output<typeof bitsAndBytesConfigFileObject>;

const checkBitsAndBytesConfig: ConfigCheck<BitsAndBytesConfig> = (config, report, name) => {
  if (config.loadIn8bit && config.loadIn4bit) {
    report(
      'loadIn4bit',
      `\`${name('loadIn4bit')}\` and \`${name('loadIn8bit')}\` are both true, but only one can be used at the same time`,
    );
  }
};

export const bitsAndBytesConfigSchema = bitsAndBytesConfigObject.superRefine(
  camelCaseRefinement(checkBitsAndBytesConfig),
);

export const bitsAndBytesConfigFileSchema = bitsAndBytesConfigFileObject
  .superRefine(
    snakeCaseRefinement(checkBitsAndBytesConfig, bitsAndBytesConfigFromSnakeCase, bitsAndBytesConfigFileKeys),
  )
  .meta({
    title: 'bitsandbytes quantization config',
    description: 'The fields of transformers\' BitsAndBytesConfig; omitted fields take its defaults.',
  });

export function bitsAndBytesConfigFromSnakeCase(file: BitsAndBytesConfigFile): BitsAndBytesConfig {
  return camelCaseKeys(file);
}

export function bitsAndBytesConfigToSnakeCase(config: BitsAndBytesConfig): BitsAndBytesConfigFile {
  return snakeCaseKeys<BitsAndBytesConfigFile>(config, bitsAndBytesConfigFileKeys);
}

export function createBitsAndBytesConfig(input: BitsAndBytesConfigInput = {}): BitsAndBytesConfig {
  return parseWithSchema(bitsAndBytesConfigSchema, input);
}

const unknownBitsAndBytesKeysNote = 'not a BitsAndBytesConfig field';

/** Reads a quantization config object with snake_case keys. */
export function parseBitsAndBytesConfigObject(value: unknown, options: LenientReadOptions = {}): BitsAndBytesConfig {
  return bitsAndBytesConfigFromSnakeCase(
    parseFileObject(bitsAndBytesConfigFileSchema, value, options, unknownBitsAndBytesKeysNote),
  );
}

export function parseBitsAndBytesConfigJson(text: string, options: LenientReadOptions = {}): BitsAndBytesConfig {
  return bitsAndBytesConfigFromSnakeCase(
    parseFileJson(bitsAndBytesConfigFileSchema, text, options, unknownBitsAndBytesKeysNote),
  );
}

/** The file form with `llm_int8_threshold` marked as the Python float it is. */
export function bitsAndBytesConfigPythonValue(file: BitsAndBytesConfigFile): PythonJsonValue {
  return { ...file, llm_int8_threshold: new PythonFloat(file.llm_int8_threshold) };
}

/** JSON in the `json.dumps(indent=2, sort_keys=True)` style of the other config files (no trailing newline). */
export function serializeBitsAndBytesConfig(config: BitsAndBytesConfigInput): string {
  return formatPythonJson(bitsAndBytesConfigPythonValue(bitsAndBytesConfigToSnakeCase(createBitsAndBytesConfig(config))));
}
