import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PeftError, StateDictError, readTensorFile, type AdapterTargetModel } from '@peft-ts/core';
import {
  FLOAT_WEIGHT_DTYPES,
  HALF_SAFETENSORS_DTYPES,
  fromTfTensor,
  writeTextFileAtomically,
} from '@peft-ts/core/internal';
import { writeSafetensors, type SafetensorsTensor } from '@peft-ts/core/safetensors';
import { parseLoraConfigJson, serializeLoraConfig, type LoraConfig } from '@peft-ts/config';
import {
  adapterStateSources,
  describeAdapterLoad,
  halfStorage,
  loadAdapterStateDict,
  readAdapterStateSource,
  type AdapterLoadResult,
  type AdapterStateSource,
} from './adapter-state-dict.js';
import { resolveLayerSettings } from './resolve-layer-settings.js';
import { LoraModel, PEFT_KEY_PREFIX, type LoraModelOptions } from './lora-model.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** PEFT's layout: the `default` adapter in the directory itself, any other in a sub-directory of its name. */
export function adapterDirectory(directory: string, adapterName: string): string {
  return adapterName === 'default' ? directory : join(directory, adapterName);
}

/** A model may name the Python class PEFT records in `auto_mapping` when a config has no task type. */
export type AutoMappingSource = { readonly peftAutoMapping?: { base_model_class: string; parent_library: string } };

/**
 * Writes adapters in PEFT's format: `adapter_config.json` (PEFT's exact formatting) and
 * `adapter_model.safetensors` (PEFT's keys, metadata `{"format":"pt"}`), each written atomically.
 */
export async function saveAdapter(
  loraModel: LoraModel,
  directory: string,
  options: { adapterNames?: readonly string[]; baseModelNameOrPath?: string } = {},
): Promise<void> {
  for (const adapterName of options.adapterNames ?? loraModel.adapterNames) {
    const target = adapterDirectory(directory, adapterName);
    await mkdir(target, { recursive: true });
    const config = loraModel.config(adapterName);
    const mapping = (loraModel.model as AutoMappingSource).peftAutoMapping;
    const saved: LoraConfig = {
      ...config,
      baseModelNameOrPath: config.baseModelNameOrPath ?? options.baseModelNameOrPath ?? null,
      // PEFT records the base model's Python class only when there is no task type.
      autoMapping: config.taskType === null ? (config.autoMapping ?? mapping ?? null) : config.autoMapping,
    };
    const tensors = new Map<string, SafetensorsTensor>();
    for (const [key, source] of adapterStateSources(loraModel, adapterName)) tensors.set(key, await savedTensor(source));
    await writeSafetensors(join(target, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    await writeTextFileAtomically(join(target, ADAPTER_CONFIG_FILE), serializeLoraConfig(saved));
  }
}

/**
 * One state-dict tensor as it is written: a half layer's weight in its own dtype (PEFT saves embedding layers in
 * the model's dtype; widening then rounding back is exact), anything else as float32. Its tfjs tensor is freed
 * once read.
 */
async function savedTensor(source: AdapterStateSource): Promise<SafetensorsTensor> {
  const tensor = readAdapterStateSource(source);
  try {
    const half = 'baseLayer' in source ? halfStorage(source.baseLayer) : undefined;
    if (!half) return await fromTfTensor(tensor);
    return { dtype: HALF_SAFETENSORS_DTYPES[half.dtype], shape: [...tensor.shape], data: Float32Array.from(await tensor.data<'float32'>()) };
  } finally {
    tensor.dispose();
  }
}

export async function readAdapterConfig(directory: string, options: { strict?: boolean; onWarning?: (message: string) => void } = {}): Promise<LoraConfig> {
  const path = join(directory, ADAPTER_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PeftError(`${path}: cannot read the adapter config (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseLoraConfigJson(text, { source: path, ...options });
}

export type LoadAdapterOptions = {
  adapterName?: string;
  /** False (the default) loads for inference: adapter parameters frozen, model in eval mode. */
  isTrainable?: boolean;
  /** Turns warnings into errors: unknown keys in adapter_config.json, and NaN/±Inf in the adapter's weights. */
  strict?: boolean;
  /** Config warnings and the weights' missing or unexpected keys (default `console.warn`). */
  onWarning?: (message: string) => void;
};

/**
 * The adapter's weights: float dtypes only (an integer tensor is named with its dtype), NaN/±Inf warned about, and
 * each stored rank equal to the config's, checked before the adapter layers are allocated at the config's rank (a
 * wrong or corrupted `r` would otherwise allocate that many rows first, or fail inside tfjs).
 */
async function readAdapterWeights(directory: string, config: LoraConfig, options: LoadAdapterOptions): Promise<Map<string, tf.Tensor>> {
  const path = join(directory, ADAPTER_WEIGHTS_FILE);
  const tensors = await readTensorFile(path, { dtypes: FLOAT_WEIGHT_DTYPES, finiteCheck: { strict: options.strict, onWarning: options.onWarning } });
  const mismatched: string[] = [];
  for (const [key, tensor] of tensors) {
    const down = /^(.+)\.lora_(?:embedding_)?A(?:\.weight)?$/.exec(key.startsWith(PEFT_KEY_PREFIX) ? key.slice(PEFT_KEY_PREFIX.length) : key);
    if (!down) continue;
    const { r } = resolveLayerSettings(down[1], config);
    if (tensor.shape[0] !== r) mismatched.push(`${key} has rank ${tensor.shape[0]} [${tensor.shape.join(', ')}], the config gives r ${r}`);
  }
  if (mismatched.length > 0) {
    tf.dispose([...tensors.values()]);
    throw new StateDictError(`${path}: ranks do not fit ${join(directory, ADAPTER_CONFIG_FILE)} (r / rank_pattern): ${mismatched.join('; ')}`, [], [], mismatched);
  }
  return tensors;
}

/**
 * Runs the adapter injection a config asks for; a config that cannot be applied to the model (target modules it
 * lacks, layer ranges past its depth) is reported against the config file.
 */
function namingConfigFile<T>(directory: string, inject: () => T): T {
  try {
    return inject();
  } catch (error) {
    if (error instanceof PeftError && !error.message.includes(directory)) error.message = `${join(directory, ADAPTER_CONFIG_FILE)}: ${error.message}`;
    throw error;
  }
}

/**
 * Loads a PEFT adapter directory onto a base model (PEFT `PeftModel.from_pretrained`). Weights load as PEFT loads
 * them (not strict): keys the model lacks and adapter keys the file lacks are said through `onWarning`.
 */
export async function loadLoraModel<MODEL extends AdapterTargetModel>(
  model: MODEL,
  directory: string,
  options: LoadAdapterOptions & Pick<LoraModelOptions, 'method'> = {},
): Promise<LoraModel<MODEL>> {
  const adapterName = options.adapterName ?? 'default';
  const config = { ...(await readAdapterConfig(directory, options)), inferenceMode: !options.isTrainable };
  const tensors = await readAdapterWeights(directory, config, options);
  try {
    const loraModel = namingConfigFile(directory, () => new LoraModel(model, config, { adapterName, method: options.method, onWarning: options.onWarning }));
    loadWeights(loraModel, tensors, adapterName, directory, options);
    if (!options.isTrainable) model.eval();
    return loraModel;
  } finally {
    for (const tensor of tensors.values()) tensor.dispose();
  }
}

/**
 * Loads another adapter directory into an existing LoraModel under `adapterName` (PEFT `load_adapter`); returns the
 * missing and unexpected keys, which are also said through `onWarning`.
 */
export async function loadAdapter(
  loraModel: LoraModel,
  directory: string,
  options: LoadAdapterOptions & { adapterName: string },
): Promise<AdapterLoadResult> {
  const config = { ...(await readAdapterConfig(directory, options)), inferenceMode: !options.isTrainable };
  const tensors = await readAdapterWeights(directory, config, options);
  try {
    namingConfigFile(directory, () => loraModel.addAdapter(options.adapterName, config));
    try {
      return loadWeights(loraModel, tensors, options.adapterName, directory, options);
    } catch (error) {
      loraModel.deleteAdapter(options.adapterName);
      throw error;
    }
  } finally {
    for (const tensor of tensors.values()) tensor.dispose();
  }
}

function loadWeights(
  loraModel: LoraModel,
  tensors: ReadonlyMap<string, tf.Tensor>,
  adapterName: string,
  directory: string,
  options: LoadAdapterOptions,
): AdapterLoadResult {
  const source = join(directory, ADAPTER_WEIGHTS_FILE);
  const result = loadAdapterStateDict(loraModel, tensors, { adapterName, source });
  const warning = describeAdapterLoad(result, source, adapterName);
  if (warning) (options.onWarning ?? console.warn)(warning);
  return result;
}
