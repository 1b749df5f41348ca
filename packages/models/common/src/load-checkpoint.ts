import * as tf from '@tensorflow/tfjs-core';
import {
  Embedding,
  HalfEmbedding,
  HalfLinear,
  Linear,
  PeftError,
  StateDictError,
  type FiniteCheck,
  type HalfDtype,
  type LinearLike,
  type Module,
  type StoredLayerTensors,
} from '@peft-ts/core';
import {
  FLOAT_WEIGHT_DTYPES,
  HALF_SAFETENSORS_DTYPES,
  brandClass,
  checkFiniteValues,
  isHalfDtype,
  narrowToHalfBits,
  widenHalfBits,
  type HalfMatrix,
} from '@peft-ts/core/internal';
import { openCheckpoint, type SafetensorsDtype, type SafetensorsTensor, type ShardedCheckpoint } from '@peft-ts/core/safetensors';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DecoderForCausalLM } from './causal-lm.js';
import type { DecoderConfig } from './decoder-config.js';

/** Everything `createLinear` gets for one linear weight, read and widened to float32. */
export type LinearWeightContext = {
  /** Module path, e.g. `model.layers.0.self_attn.q_proj` or `lm_head`. */
  readonly key: string;
  /** float32 [outFeatures, inFeatures], PyTorch layout. The loader disposes it after the call: copy what you keep. */
  readonly weight: tf.Tensor2D;
  readonly inFeatures: number;
  readonly outFeatures: number;
};

export type LoadCheckpointOptions = {
  /**
   * Builds the layer holding a linear weight, e.g. a 4-bit one quantized on load. Return undefined to keep a float
   * `Linear`. Called as each weight is read, so a quantized load never holds the whole float model.
   */
  readonly createLinear?: (context: LinearWeightContext) => LinearLike | undefined;
  /**
   * `'auto'` (the default): when config.json's `torch_dtype` is float16 or bfloat16, linear and embedding weights
   * stored in it stay in half precision (`HalfLinear`, `HalfEmbedding`: 2 bytes a parameter, widened per product;
   * frozen, as a base under adapters is); norms are float32. `'float32'` widens every tensor on load.
   */
  readonly torchDtype?: 'auto' | 'float32';
  /**
   * Builds a layer from the stored tensors of a pre-quantized checkpoint (a config.json `quantization_config`, e.g.
   * a "-bnb-4bit" model): pass `bnbCheckpointLinear` from `@peft-ts/quant`. Required for such checkpoints.
   */
  readonly loadQuantizedLinear?: (layer: StoredLayerTensors) => LinearLike;
} & FiniteCheck;

/** A config.json that is missing; a family's parser reports what is wrong inside one. */
export class ConfigFileError extends PeftError {
  static {
    brandClass(this, '@peft-ts/model-common:ConfigFileError');
  }
}

/**
 * Reads `<directory>/config.json` and hands its text to `parse` (a family's validating parser), naming the file as
 * the source. `what` names the checkpoint kind in the not-found error.
 */
export async function readConfigFile<C>(
  directory: string,
  parse: (text: string, options: { source: string }) => C,
  options: { what?: string; notFound?: (message: string) => Error } = {},
): Promise<C> {
  const path = join(directory, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      const message = `${path}: not found (a ${options.what ?? 'Hugging Face model'} checkpoint directory needs a config.json)`;
      throw options.notFound ? options.notFound(message) : new ConfigFileError(message);
    }
    throw error;
  }
  return parse(text, { source: path });
}

/**
 * Loads a transformers causal-LM checkpoint directory into the model `create` builds shape-only (`new
 * MistralForCausalLM(config, { meta: true })`, say) for `decoderConfig`, which is checked against the checkpoint's
 * layers first (so a config naming far more layers is refused before building takes minutes): model.safetensors or a sharded model.safetensors.index.json, in F32, F16 or BF16 (computed in float32; a half
 * checkpoint's linear and embedding weights stay half in memory, see `torchDtype`), or pre-quantized by bitsandbytes
 * (see `loadQuantizedLinear`). Every tensor is read, converted and placed one at a time. Missing, unexpected and
 * mis-shaped tensors are all reported in one StateDictError before anything is read. Float weights holding NaN or
 * ±Inf are warned about (`onWarning`), or refused with `strict`. With tied embeddings a stored `lm_head.weight` is
 * ignored, as transformers' `tie_weights` overrides it; so are the keys the definition's `ignoredCheckpointKeys` match.
 */
export async function loadCausalLm<M extends DecoderForCausalLM>(
  directory: string,
  decoderConfig: DecoderConfig,
  create: () => M,
  options: LoadCheckpointOptions = {},
): Promise<M> {
  const checkpoint = await openCheckpoint(directory);
  const config = decoderConfig;
  const halfDtype = options.torchDtype !== 'float32' && isHalfDtype(config.torch_dtype) ? config.torch_dtype : null;
  let model: M | undefined;
  try {
    checkLayerCount(config, checkpoint, join(directory, 'config.json'));
    model = create();
    const { tensors, quantizedLayers } = planLoad(model, checkpoint);
    for (const layer of quantizedLayers) {
      model.setSubmodule(layer.path, await loadQuantizedLayer(options, config, checkpoint, layer));
    }
    for (const { name, path, module, parameterName } of tensors) {
      const storedDtype = checkpoint.info(name).dtype;
      const halfWeight = halfDtype && parameterName === 'weight' && storedDtype === HALF_SAFETENSORS_DTYPES[halfDtype];
      if (halfWeight && module instanceof Embedding) {
        const matrix = await readHalfMatrix(checkpoint, name, halfDtype, [module.numEmbeddings, module.embeddingDim], options);
        model.setSubmodule(path, new HalfEmbedding(matrix, { paddingIndex: module.paddingIndex }));
        continue;
      }
      if (halfWeight && module instanceof Linear && !options.createLinear) {
        model.setSubmodule(path, new HalfLinear(await readHalfMatrix(checkpoint, name, halfDtype, [module.outFeatures, module.inFeatures], options)));
        continue;
      }
      const stored = await checkpoint.readTensor(name);
      checkFiniteValues(stored.data as Float32Array, { file: checkpoint.shardOf(name).path, tensor: name }, options);
      const tensor = tf.tensor(stored.data as Float32Array, [...stored.shape], 'float32');
      try {
        const replacement = options.createLinear && module instanceof Linear ? createLinear(options.createLinear, path, tensor) : undefined;
        if (replacement) {
          model.setSubmodule(path, replacement);
        } else if (halfWeight && module instanceof Linear) {
          // The float values came from half patterns, so narrowing them again is exact (and needs no read back).
          const bits = narrowToHalfBits(stored.data as Float32Array, halfDtype);
          model.setSubmodule(path, new HalfLinear({ dtype: halfDtype, rows: module.outFeatures, columns: module.inFeatures, bits }));
        } else {
          module.parameter(parameterName).set(tensor, name);
        }
      } finally {
        tensor.dispose();
      }
    }
    tieHalfEmbedding(model);
    return model;
  } catch (error) {
    model?.dispose();
    throw error;
  } finally {
    await checkpoint.close();
  }
}

/** With tied embeddings a half `embed_tokens` is also the head: `lm_head` becomes a HalfLinear over the same words. */
function tieHalfEmbedding(model: DecoderForCausalLM): void {
  const embedding = model.getSubmodule('model.embed_tokens');
  if (model.decoderConfig.tie_word_embeddings && embedding instanceof HalfEmbedding) {
    model.setSubmodule('lm_head', new HalfLinear(embedding.words()));
  }
}

/** A half tensor's 16-bit patterns as stored (no float round trip), checked for NaN/±Inf as float weights are. */
async function readHalfMatrix(
  checkpoint: ShardedCheckpoint,
  name: string,
  dtype: HalfDtype,
  [rows, columns]: [number, number],
  check: FiniteCheck,
): Promise<HalfMatrix> {
  const bytes = await checkpoint.readTensorBytes(name);
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  checkFiniteValues(widenHalfBits(bits, dtype), { file: checkpoint.shardOf(name).path, tensor: name }, check);
  return { dtype, rows, columns, bits };
}

async function loadQuantizedLayer(
  options: LoadCheckpointOptions,
  config: DecoderConfig,
  checkpoint: ShardedCheckpoint,
  { path, names, module }: QuantizedLayer,
): Promise<LinearLike> {
  if (!options.loadQuantizedLinear) {
    throw new StateDictError(
      `${checkpoint.path}: ${path} is stored quantized (config.json quantization_config); pass the ` +
        `loadQuantizedLinear option (bnbCheckpointLinear from @peft-ts/quant) to load it`,
    );
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const name of names) tensors.set(name.slice(path.length + 1), await checkpoint.readTensor(name));
  const layer = options.loadQuantizedLinear({
    key: path,
    inFeatures: module.inFeatures,
    outFeatures: module.outFeatures,
    tensors,
    quantizationConfig: config.quantization_config,
    source: checkpoint.path,
  });
  if (layer.inFeatures !== module.inFeatures || layer.outFeatures !== module.outFeatures) {
    throw new StateDictError(`loadQuantizedLinear for ${path}: returned a ${layer.inFeatures}→${layer.outFeatures} layer, expected ${module.inFeatures}→${module.outFeatures}`);
  }
  return layer;
}

/**
 * The shape-only model is built before it is compared with the checkpoint, so a config naming far more layers than
 * the checkpoint holds (a typo, a corrupted file) is refused first: building it would take minutes or all memory.
 */
function checkLayerCount(config: DecoderConfig, checkpoint: ShardedCheckpoint, configPath: string): void {
  let stored = 0;
  for (const name of checkpoint.tensorNames) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer) stored = Math.max(stored, Number(layer[1]) + 1);
  }
  if (stored >= config.num_hidden_layers) return;
  const held = stored === 0 ? 'no decoder layers' : `decoder layers 0 to ${stored - 1}`;
  throw new StateDictError(`${checkpoint.path}: holds ${held} (model.layers.N.*), but ${configPath} has num_hidden_layers ${config.num_hidden_layers}`);
}

function createLinear(
  create: NonNullable<LoadCheckpointOptions['createLinear']>,
  key: string,
  weight: tf.Tensor,
): LinearLike | undefined {
  const [outFeatures, inFeatures] = weight.shape;
  const replacement = create({ key, weight: weight as tf.Tensor2D, inFeatures, outFeatures });
  if (replacement && (replacement.inFeatures !== inFeatures || replacement.outFeatures !== outFeatures)) {
    throw new StateDictError(
      `createLinear for ${key}: returned a ${replacement.inFeatures}→${replacement.outFeatures} layer, expected ${inFeatures}→${outFeatures}`,
    );
  }
  return replacement;
}

type PlannedTensor = { name: string; path: string; module: Module; parameterName: string };

/** A linear layer stored quantized: its checkpoint tensors (`<path>.weight`, `<path>.weight.absmax`, `<path>.SCB`, …). */
type QuantizedLayer = { path: string; module: Linear; names: string[] };

/** bitsandbytes layers keep their quant state beside the weight: `weight.absmax` (4-bit) or `SCB` (8-bit). */
function quantizedLayers(model: DecoderForCausalLM, checkpoint: ShardedCheckpoint): QuantizedLayer[] {
  const layers: QuantizedLayer[] = [];
  for (const [path, module] of model.namedModules()) {
    if (!(module instanceof Linear) || !(checkpoint.has(`${path}.weight.absmax`) || checkpoint.has(`${path}.SCB`))) continue;
    const names = checkpoint.tensorNames.filter(
      (name) => name === `${path}.weight` || name.startsWith(`${path}.weight.`) || name === `${path}.SCB` || name === `${path}.weight_format`,
    );
    layers.push({ path, module, names });
  }
  return layers;
}

/** Every parameter of the (shape-only) model against the checkpoint's headers: all problems in one error. */
function planLoad(model: DecoderForCausalLM, checkpoint: ShardedCheckpoint): { tensors: PlannedTensor[]; quantizedLayers: QuantizedLayer[] } {
  const modules = new Map(model.namedModules());
  const quantized = quantizedLayers(model, checkpoint);
  const quantizedWeights = new Set(quantized.map(({ path }) => `${path}.weight`));
  const plan: PlannedTensor[] = [];
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const [name, parameter] of model.namedParameters()) {
    const cut = name.lastIndexOf('.');
    const path = name.slice(0, cut);
    if (!checkpoint.has(name)) {
      missing.push(name);
      continue;
    }
    if (quantizedWeights.has(name)) continue;
    const { dtype, shape } = checkpoint.info(name);
    const shapeMatches = shape.length === parameter.shape.length && shape.every((size, axis) => size === parameter.shape[axis]);
    if (!FLOAT_WEIGHT_DTYPES.includes(dtype) || !shapeMatches) {
      mismatched.push(`${name}: expected F32/F16/BF16 [${parameter.shape.join(', ')}], got ${dtype} [${shape.join(', ')}]`);
      continue;
    }
    plan.push({ name, path, module: modules.get(path)!, parameterName: name.slice(cut + 1) });
  }
  const expected = new Set([...model.namedParameters().map(([name]) => name), ...quantized.flatMap(({ names }) => names)]);
  const ignored = model.decoderConfig.tie_word_embeddings ? new Set(['lm_head.weight']) : new Set<string>();
  const ignoredPatterns = model.definition.ignoredCheckpointKeys ?? [];
  const unexpected = checkpoint.tensorNames.filter(
    (name) => !expected.has(name) && !ignored.has(name) && !ignoredPatterns.some((pattern) => pattern.test(name)),
  );
  if (missing.length || unexpected.length || mismatched.length) {
    const problems = [
      missing.length ? `missing (${missing.length}): ${missing.join(', ')}` : '',
      unexpected.length ? `unexpected (${unexpected.length}): ${unexpected.join(', ')}` : '',
      mismatched.length ? `mis-shaped (${mismatched.length}): ${mismatched.join('; ')}` : '',
    ].filter(Boolean);
    throw new StateDictError(
      `${checkpoint.path}: checkpoint does not fit ${model.definition.architecture} (${model.decoderConfig.num_hidden_layers} layers): ${problems.join(' | ')}`,
      missing,
      unexpected,
      mismatched,
    );
  }
  return { tensors: plan, quantizedLayers: quantized };
}
