import type * as tf from '@tensorflow/tfjs-core';
import { StateDictError, type Module, type Parameter, type WeightAccess } from '@peft-ts/core';
import { HalfWeight, narrowToHalfBits, sameShape } from '@peft-ts/core/internal';
import type { LoraConfig } from '@peft-ts/config';
import { LoraEmbedding } from './lora-embedding.js';
import { PEFT_KEY_PREFIX, type LoraModel } from './lora-model.js';

const EMBEDDING_TARGET_NAMES = ['embed_tokens', 'lm_head'];

/** Index of the adapter-parameter segment (`lora_A`, `lora_embedding_B`, …) in a dotted path. */
function adapterSegment(parts: readonly string[], prefix: string): number {
  return parts.findIndex((part) => part.startsWith(prefix));
}

/**
 * PEFT's on-disk name of an in-memory adapter parameter: `base_model.model.` + the path without
 * the adapter name (`…q_proj.lora_A.default.weight` → `…q_proj.lora_A.weight`).
 */
export function toPeftKey(path: string, adapterName: string, prefix = 'lora_'): string {
  const parts = path.split('.');
  const segment = adapterSegment(parts, prefix);
  if (segment >= 0 && parts[segment + 1] === adapterName) parts.splice(segment + 1, 1);
  return PEFT_KEY_PREFIX + parts.join('.');
}

/**
 * Inverse of `toPeftKey`: puts the adapter name back after the adapter-parameter segment, and
 * routes a saved module (`lm_head.weight`) to its wrapper's copy (`lm_head.modules_to_save.<adapter>.weight`).
 */
export function fromPeftKey(key: string, adapterName: string, prefix = 'lora_', savedModuleKeys: readonly string[] = []): string {
  const path = key.startsWith(PEFT_KEY_PREFIX) ? key.slice(PEFT_KEY_PREFIX.length) : key;
  const savedModule = savedModuleKeys.find((module) => path.startsWith(`${module}.`));
  if (savedModule) return `${savedModule}.modules_to_save.${adapterName}.${path.slice(savedModule.length + 1)}`;
  const parts = path.split('.');
  const segment = adapterSegment(parts, prefix);
  if (segment >= 0) parts.splice(segment + 1, 0, adapterName);
  return parts.join('.');
}

/**
 * Whether PEFT also saves the full embedding weights: with `save_embedding_layers="auto"` it does
 * when an embedding layer name is among the target modules (we never guess from the Hub).
 */
function savesEmbeddingLayers(config: LoraConfig): boolean {
  const targets = config.targetModules;
  if (targets === null) return false;
  return typeof targets === 'string'
    ? EMBEDDING_TARGET_NAMES.some((name) => targets.includes(name))
    : targets.some((target) => EMBEDDING_TARGET_NAMES.includes(target));
}

/**
 * Where one tensor of an adapter's state dict comes from: a parameter, or the full weight of a wrapped embedding
 * layer, which is read through its weight access since its `weight` parameter may hold another form (half words,
 * quantized codes).
 */
export type AdapterStateSource = { readonly parameter: Parameter } | { readonly baseLayer: Module };

/**
 * The sources of the tensors PEFT's `get_peft_model_state_dict` returns for one adapter, under PEFT's keys: its
 * LoRA (and DoRA) parameters, biases per `bias`, and the wrapped embedding layers' full weights when embeddings
 * are targeted. Nothing is read or allocated.
 */
export function adapterStateSources(loraModel: LoraModel, adapterName = loraModel.activeAdapter): Map<string, AdapterStateSource> {
  const config = loraModel.config(adapterName);
  const prefix = loraModel.method.parameterPrefix;
  const result = new Map<string, AdapterStateSource>();
  for (const [path, parameter] of loraModel.model.namedParameters({ includeShared: true })) {
    const parts = path.split('.');
    const segment = adapterSegment(parts, prefix);
    const copy = parts.indexOf('modules_to_save');
    if (parts.includes('original_module')) continue;
    if (copy >= 0) {
      if (parts[copy + 1] === adapterName) result.set(PEFT_KEY_PREFIX + [...parts.slice(0, copy), ...parts.slice(copy + 2)].join('.'), { parameter });
    } else if (segment >= 0) {
      if (parts[segment + 1] === adapterName) result.set(toPeftKey(path, adapterName, prefix), { parameter });
    } else if (parts.at(-1) === 'bias' && (config.bias === 'all' || (config.bias === 'lora_only' && parts.at(-2) === 'base_layer'))) {
      result.set(PEFT_KEY_PREFIX + path, { parameter });
    }
  }
  if (savesEmbeddingLayers(config)) {
    for (const [path, layer] of loraModel.loraLayers()) {
      const isEmbeddingLayer = layer instanceof LoraEmbedding || path === loraModel.model.outputEmbeddingKey;
      if (isEmbeddingLayer) result.set(`${PEFT_KEY_PREFIX}${path}.base_layer.weight`, { baseLayer: layer.baseLayer });
    }
  }
  return result;
}

/** The half storage of a layer whose `weight` parameter holds half words (`HalfEmbedding`, `HalfLinear`). */
export function halfStorage(module: Module): HalfWeight | undefined {
  const storage = (module as Partial<{ storage: unknown }>).storage;
  return storage instanceof HalfWeight ? storage : undefined;
}

/**
 * One source's float32 tensor, owned by the caller: a parameter's value (cloned), or a layer's weight through its
 * weight access (widened from half words, dequantized), the parameter itself where the layer has none.
 */
export function readAdapterStateSource(source: AdapterStateSource): tf.Tensor {
  if ('parameter' in source) return source.parameter.value.clone();
  const access = (source.baseLayer as Partial<{ weightAccess: WeightAccess }>).weightAccess;
  return access ? access.getBaseWeight() : source.baseLayer.parameter('weight').value.clone();
}

/**
 * The tensors of `adapterStateSources`, as float32 copies the caller owns and disposes
 * (`tf.dispose([...state.values()])`).
 */
export function adapterStateDict(loraModel: LoraModel, adapterName = loraModel.activeAdapter): Map<string, tf.Tensor> {
  return new Map([...adapterStateSources(loraModel, adapterName)].map(([key, source]) => [key, readAdapterStateSource(source)]));
}

/** What loading an adapter's tensors did not match, under PEFT's file keys. */
export type AdapterLoadResult = {
  /** This adapter's keys (LoRA/DoRA parameters, modules_to_save copies) absent from the file: they keep their init. */
  readonly missingKeys: string[];
  /** Keys in the file that name no parameter of the model: ignored. */
  readonly unexpectedKeys: string[];
};

/**
 * Loads PEFT-keyed tensors into one adapter as PEFT's `set_peft_model_state_dict` does (`strict=False`): what
 * matches is loaded, and missing and unexpected keys are returned, not raised. A tensor whose shape or dtype
 * does not fit is an error (PyTorch raises on it even when not strict); all of them are listed together and
 * nothing is written then.
 */
export function loadAdapterStateDict(
  loraModel: LoraModel,
  tensors: ReadonlyMap<string, tf.Tensor>,
  options: { adapterName?: string; source?: string } = {},
): AdapterLoadResult {
  const adapterName = options.adapterName ?? loraModel.activeAdapter;
  const prefix = loraModel.method.parameterPrefix;
  const own = new Map(loraModel.model.namedParameters({ includeShared: true }));
  const sources = adapterStateSources(loraModel, adapterName);
  const expected = new Set(sources.keys());
  const savedModuleKeys = loraModel.modulesToSaveWrappers().map(([key]) => key);
  const unexpectedKeys: string[] = [];
  const mismatched: string[] = [];
  const assignments: [string, tf.Tensor][] = [];
  const halfAssignments: [HalfWeight, tf.Tensor][] = [];
  for (const [key, tensor] of tensors) {
    const source = sources.get(key);
    const half = source && 'baseLayer' in source ? halfStorage(source.baseLayer) : undefined;
    if (half) {
      // The parameter holds the half words: the file's float weight is checked against the float shape instead.
      expected.delete(key);
      if (tensor.dtype !== 'float32' || !sameShape([half.rows, half.columns], tensor.shape)) {
        mismatched.push(`${key}: model has ${half.dtype} [${half.rows},${half.columns}], checkpoint has ${tensor.dtype} [${tensor.shape}]`);
      } else {
        halfAssignments.push([half, tensor]);
      }
      continue;
    }
    const path = fromPeftKey(key, adapterName, prefix, savedModuleKeys);
    const parameter = own.get(path);
    if (!parameter) {
      unexpectedKeys.push(key);
      continue;
    }
    expected.delete(key);
    if (!sameShape(parameter.shape, tensor.shape) || parameter.dtype !== tensor.dtype) {
      mismatched.push(`${key}: model has ${parameter.dtype} [${parameter.shape}], checkpoint has ${tensor.dtype} [${tensor.shape}]`);
      continue;
    }
    assignments.push([path, tensor]);
  }
  const savedModulePrefixes = savedModuleKeys.map((module) => `${PEFT_KEY_PREFIX}${module}.`);
  const missingKeys = [...expected].filter((key) => key.includes(prefix) || savedModulePrefixes.some((module) => key.startsWith(module)));
  if (mismatched.length) {
    const where = options.source ? `${options.source}: ` : '';
    throw new StateDictError(
      `${where}adapter '${adapterName}' does not fit the model: shape mismatch (does the config's r/rank_pattern fit the checkpoint?): ${mismatched.join('; ')}`,
      missingKeys,
      unexpectedKeys,
      mismatched,
    );
  }
  for (const [path, tensor] of assignments) own.get(path)!.set(tensor, path);
  // Stored as torch's `load_state_dict` copies into a half weight (rounded to nearest even; a half file is exact).
  // The tensors were just read from a file, so their values are still on the host on every backend.
  for (const [half, tensor] of halfAssignments) {
    half.setMatrix({ dtype: half.dtype, rows: half.rows, columns: half.columns, bits: narrowToHalfBits(tensor.dataSync() as Float32Array, half.dtype) });
  }
  return { missingKeys, unexpectedKeys };
}

/** One line naming what a load left out, or undefined when everything matched. */
export function describeAdapterLoad(result: AdapterLoadResult, source: string, adapterName: string): string | undefined {
  const parts = [
    result.missingKeys.length ? `missing (left at their initial values): ${result.missingKeys.join(', ')}` : '',
    result.unexpectedKeys.length ? `unexpected (ignored): ${result.unexpectedKeys.join(', ')}` : '',
  ].filter(Boolean);
  return parts.length ? `${source}: adapter '${adapterName}' loaded with keys ${parts.join(' | ')}` : undefined;
}
