import { describe, expect, it, vi } from 'vitest';
import {
  type BitsAndBytesConfig,
  bitsAndBytesConfigFromSnakeCase,
  bitsAndBytesConfigToSnakeCase,
  createBitsAndBytesConfig,
  parseBitsAndBytesConfigJson,
  parseBitsAndBytesConfigObject,
  serializeBitsAndBytesConfig,
} from './bits-and-bytes-config.js';
import { configErrorMessage } from './test/config-error-message.js';

const source = 'quantization.json';
const parseStrict = (value: unknown) => parseBitsAndBytesConfigObject(value, { source, strict: true });

describe('bitsAndBytesConfig', () => {
  it("has transformers' defaults", () => {
    const expected: BitsAndBytesConfig = {
      loadIn8bit: false,
      loadIn4bit: false,
      llmInt8Threshold: 6,
      llmInt8SkipModules: null,
      llmInt8EnableFp32CpuOffload: false,
      llmInt8HasFp16Weight: false,
      bnb4bitComputeDtype: null,
      bnb4bitQuantType: 'fp4',
      bnb4bitUseDoubleQuant: false,
      bnb4bitQuantStorage: 'uint8',
    };
    expect(createBitsAndBytesConfig()).toEqual(expected);
    expect(parseStrict({})).toEqual(expected);
  });

  it('serializes with snake_case keys, sorted, with the threshold as a float', () => {
    expect(serializeBitsAndBytesConfig({})).toBe(`{
  "bnb_4bit_compute_dtype": null,
  "bnb_4bit_quant_storage": "uint8",
  "bnb_4bit_quant_type": "fp4",
  "bnb_4bit_use_double_quant": false,
  "llm_int8_enable_fp32_cpu_offload": false,
  "llm_int8_has_fp16_weight": false,
  "llm_int8_skip_modules": null,
  "llm_int8_threshold": 6.0,
  "load_in_4bit": false,
  "load_in_8bit": false
}`);
  });

  it('reads the QLoRA recipe and writes it back unchanged', () => {
    const text = serializeBitsAndBytesConfig({
      loadIn4bit: true,
      bnb4bitQuantType: 'nf4',
      bnb4bitUseDoubleQuant: true,
      bnb4bitComputeDtype: 'bfloat16',
      bnb4bitQuantStorage: 'bfloat16',
    });
    const config = parseBitsAndBytesConfigJson(text, { source, strict: true });
    expect(config).toMatchObject({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitComputeDtype: 'bfloat16' });
    expect(serializeBitsAndBytesConfig(config)).toBe(text);
  });

  it('converts between camelCase and snake_case', () => {
    const config = createBitsAndBytesConfig({ loadIn8bit: true, llmInt8SkipModules: ['lm_head', 'score'] });
    const file = bitsAndBytesConfigToSnakeCase(config);
    expect(file).toMatchObject({ load_in_8bit: true, llm_int8_skip_modules: ['lm_head', 'score'] });
    expect(Object.keys(file)).toHaveLength(10);
    expect(bitsAndBytesConfigFromSnakeCase(file)).toEqual(config);
  });

  it('accepts each documented dtype', () => {
    for (const dtype of ['float32', 'bfloat16', 'float16'] as const) {
      expect(parseStrict({ bnb_4bit_compute_dtype: dtype }).bnb4bitComputeDtype).toBe(dtype);
    }
    for (const dtype of ['uint8', 'bfloat16', 'float16', 'float32'] as const) {
      expect(parseStrict({ bnb_4bit_quant_storage: dtype }).bnb4bitQuantStorage).toBe(dtype);
    }
  });

  it('rejects loading in 8-bit and 4-bit at once', () => {
    expect(configErrorMessage(() => parseStrict({ load_in_8bit: true, load_in_4bit: true }))).toBe(
      'quantization.json: load_in_4bit: `load_in_4bit` and `load_in_8bit` are both true, but only one can be used at the same time',
    );
    expect(configErrorMessage(() => createBitsAndBytesConfig({ loadIn8bit: true, loadIn4bit: true }))).toBe(
      'loadIn4bit: `loadIn4bit` and `loadIn8bit` are both true, but only one can be used at the same time',
    );
    expect(parseStrict({ load_in_8bit: true }).loadIn8bit).toBe(true);
  });

  it.each([
    [{ bnb_4bit_quant_type: 'int4' }, 'bnb_4bit_quant_type: expected "nf4", "fp4", got "int4"'],
    [{ bnb_4bit_compute_dtype: 'float64' }, 'bnb_4bit_compute_dtype: expected one of "float32", "bfloat16", "float16" or null, got "float64"'],
    [{ bnb_4bit_quant_storage: 'int8' }, 'bnb_4bit_quant_storage: expected "uint8", "bfloat16", "float16", "float32", got "int8"'],
    [{ llm_int8_threshold: -1 }, 'llm_int8_threshold: expected a number >= 0, got -1'],
    [{ llm_int8_skip_modules: 'lm_head' }, 'llm_int8_skip_modules: expected a list of module names, got "lm_head"'],
    [{ load_in_4bit: 'yes' }, 'load_in_4bit: expected true or false, got "yes"'],
  ])('reports %j', (file, expected) => {
    expect(configErrorMessage(() => parseStrict(file))).toBe(`${source}: ${expected}`);
  });

  it('drops unknown keys with a warning unless strict', () => {
    const onWarning = vi.fn();
    expect(parseBitsAndBytesConfigObject({ load_in_4bits: true }, { source, onWarning }).loadIn4bit).toBe(false);
    expect(onWarning).toHaveBeenCalledWith(expect.stringContaining('"load_in_4bits" (did you mean "load_in_4bit"?)'));
    expect(configErrorMessage(() => parseStrict({ load_in_4bits: true }))).toBe(
      'quantization.json: unknown key "load_in_4bits" (did you mean "load_in_4bit"?)',
    );
  });
});
