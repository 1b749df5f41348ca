import { PeftError, type FiniteCheck } from '@peft-ts/core';
import { createBitsAndBytesConfig, type BitsAndBytesConfig, type BitsAndBytesConfigInput } from '@peft-ts/config';
import { loadAdapter, loadLoraModel, type LoraModel } from '@peft-ts/lora';
import { TokenizerError, loadTokenizer, type CausalLmFamily, type DecoderForCausalLM, type HfTokenizer } from '@peft-ts/model-common';
import { adapterMethod } from './adapter-method.js';
import { readModelConfig } from './model-registry.js';
import type { TextTokenizer } from '../data/text-tokenizer.js';
import { bnbCheckpointLinear, quantizedLinearFactory } from '@peft-ts/quant';

export type QuantizationShorthand = '4bit' | '8bit';

/** `--quant 4bit` is the QLoRA recipe (NF4, double quant); `8bit` is LLM.int8 with threshold 6. */
export function quantizationFromShorthand(shorthand: QuantizationShorthand | undefined): BitsAndBytesConfig | undefined {
  if (shorthand === undefined) return undefined;
  const presets: Record<QuantizationShorthand, BitsAndBytesConfigInput> = {
    '4bit': { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true },
    '8bit': { loadIn8bit: true },
  };
  const preset = presets[shorthand];
  if (!preset) throw new PeftError(`--quant: expected 4bit or 8bit, got '${shorthand}'`);
  return createBitsAndBytesConfig(preset);
}

export type LoadedModel = { model: DecoderForCausalLM; tokenizer: HfTokenizer | null; family: CausalLmFamily };

/** `--strict` (config key `strict`): what is otherwise a warning on stderr (NaN/Inf weights, unknown adapter keys) is an error. */
export type StrictLoading = { strict?: boolean };

const warnOnStderr = (message: string) => process.stderr.write(`warning: ${message}\n`);
const loadingChecks = (options: StrictLoading): FiniteCheck => ({ strict: options.strict ?? false, onWarning: warnOnStderr });

/**
 * The model's tokenizer for the data pipeline; when the directory has none, a stand-in that
 * fails only if text actually needs encoding (pre-tokenized `input_ids` data trains without one).
 */
export async function loadDataTokenizer(directory: string): Promise<TextTokenizer> {
  try {
    return await loadTokenizer(directory);
  } catch (error) {
    if (!(error instanceof TokenizerError)) throw error;
    return {
      encode: () => {
        throw error;
      },
      applyChatTemplate: () => {
        throw error;
      },
      bosTokenId: null,
      eosTokenId: null,
      padTokenId: null,
    };
  }
}

/**
 * A Hugging Face model directory of any registered family (by config.json's `model_type`), quantized on load when asked, reporting each linear weight as
 * it is read (and quantized); a checkpoint saved pre-quantized by bitsandbytes keeps its stored codes; the
 * tokenizer when asked for.
 */
export async function loadBaseModel(
  directory: string,
  options: { quantization?: BitsAndBytesConfig; needsTokenizer?: boolean; onProgress?: (done: number, total: number) => void } & StrictLoading = {},
): Promise<LoadedModel> {
  const quantized = options.quantization && (options.quantization.loadIn4bit || options.quantization.loadIn8bit);
  const quantize = quantized ? quantizedLinearFactory(options.quantization!) : undefined;
  const { family, config } = await readModelConfig(directory);
  const linearWeights = family.linearWeightCount(config);
  let done = 0;
  const model = await family.load(directory, {
    ...loadingChecks(options),
    createLinear: (context) => {
      options.onProgress?.(++done, linearWeights);
      return quantize?.(context);
    },
    loadQuantizedLinear: bnbCheckpointLinear,
  });
  const tokenizer = options.needsTokenizer === false ? null : await loadTokenizer(directory);
  return { model, tokenizer, family };
}

/**
 * Loads adapter directories onto a model: the first as `default` (or its directory name when
 * several are given), the rest under their directory names; `active` chooses the active one.
 */
export async function attachAdapters(
  model: DecoderForCausalLM,
  directories: readonly string[],
  options: { active?: string; isTrainable?: boolean } & StrictLoading = {},
): Promise<LoraModel<DecoderForCausalLM> | null> {
  if (directories.length === 0) return null;
  const names = directories.length === 1 ? ['default'] : directories.map((directory) => directory.replace(/\/+$/, '').split('/').pop()!);
  const common = { isTrainable: options.isTrainable, ...loadingChecks(options) };
  const lora = await loadLoraModel(model, directories[0], { ...common, adapterName: names[0], method: adapterMethod });
  for (let index = 1; index < directories.length; index++) {
    await loadAdapter(lora, directories[index], { ...common, adapterName: names[index] });
  }
  if (options.active) await lora.setAdapter(options.active);
  return lora;
}
