import * as tf from '@tensorflow/tfjs-core';
import { FLOAT_WEIGHT_DTYPES, Linear, StateDictError, checkFiniteValues, type FiniteCheck, type LinearLike, type Module } from '@peft-ts/core';
import { openCheckpoint, type ShardedCheckpoint } from '@peft-ts/core/safetensors';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MistralConfigError, parseMistralConfig, type MistralConfig } from './mistral-config.js';
import { MistralForCausalLM } from './mistral-model.js';

/** Everything `createLinear` gets for one linear weight, read and widened to float32. */
export type LinearWeightContext = {
  /** Module path, e.g. `model.layers.0.self_attn.q_proj` or `lm_head`. */
  readonly key: string;
  /** float32 [outFeatures, inFeatures], PyTorch layout. The loader disposes it after the call: copy what you keep. */
  readonly weight: tf.Tensor2D;
  readonly inFeatures: number;
  readonly outFeatures: number;
};

export type LoadMistralOptions = {
  /**
   * Builds the layer holding a linear weight, e.g. a 4-bit one quantized on load. Return undefined to keep a float
   * `Linear`. Called as each weight is read, so a quantized load never holds the whole float model.
   */
  readonly createLinear?: (context: LinearWeightContext) => LinearLike | undefined;
  /** Replaces config.json fields before the model is built (e.g. `{ sliding_window: null }`). */
  readonly configOverrides?: Partial<MistralConfig>;
} & FiniteCheck;

/** Reads and validates `<directory>/config.json`. */
export async function readMistralConfig(directory: string): Promise<MistralConfig> {
  const path = join(directory, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MistralConfigError(`${path}: not found (a Mistral checkpoint directory needs a config.json)`);
    }
    throw error;
  }
  return parseMistralConfig(text, { source: path });
}

/**
 * Loads a transformers `MistralForCausalLM` checkpoint directory: config.json plus model.safetensors or a sharded
 * model.safetensors.index.json, in F32, F16 or BF16 (computed in float32). The model is built shape-only and every
 * tensor is read, converted and placed one at a time. Missing, unexpected and mis-shaped tensors are all reported in
 * one StateDictError before anything is read. Weights holding NaN or ±Inf are warned about (`onWarning`), or refused
 * with `strict`. With tied embeddings a stored `lm_head.weight` is ignored, as
 * transformers' `tie_weights` overrides it.
 */
export async function loadMistral(directory: string, options: LoadMistralOptions = {}): Promise<MistralForCausalLM> {
  const fileConfig = await readMistralConfig(directory);
  const config = options.configOverrides
    ? parseMistralConfig({ ...fileConfig, ...options.configOverrides }, { source: join(directory, 'config.json') })
    : fileConfig;
  const checkpoint = await openCheckpoint(directory);
  let model: MistralForCausalLM | undefined;
  try {
    checkLayerCount(config, checkpoint, join(directory, 'config.json'));
    model = new MistralForCausalLM(config, { meta: true });
    const plan = planLoad(model, checkpoint);
    for (const { name, path, module, parameterName } of plan) {
      const stored = await checkpoint.readTensor(name);
      checkFiniteValues(stored.data as Float32Array, { file: checkpoint.shardOf(name).path, tensor: name }, options);
      const tensor = tf.tensor(stored.data as Float32Array, [...stored.shape], 'float32');
      try {
        const replacement = options.createLinear && module instanceof Linear ? createLinear(options.createLinear, path, tensor) : undefined;
        if (replacement) model.setSubmodule(path, replacement);
        else module.parameter(parameterName).set(tensor, name);
      } finally {
        tensor.dispose();
      }
    }
    return model;
  } catch (error) {
    model?.dispose();
    throw error;
  } finally {
    await checkpoint.close();
  }
}

/**
 * The shape-only model is built before it is compared with the checkpoint, so a config naming far more layers than
 * the checkpoint holds (a typo, a corrupted file) is refused first: building it would take minutes or all memory.
 */
function checkLayerCount(config: MistralConfig, checkpoint: ShardedCheckpoint, configPath: string): void {
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
  create: NonNullable<LoadMistralOptions['createLinear']>,
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

/** Every parameter of the (shape-only) model against the checkpoint's headers: all problems in one error. */
function planLoad(model: MistralForCausalLM, checkpoint: ShardedCheckpoint): PlannedTensor[] {
  const modules = new Map(model.namedModules());
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
    const { dtype, shape } = checkpoint.info(name);
    const shapeMatches = shape.length === parameter.shape.length && shape.every((size, axis) => size === parameter.shape[axis]);
    if (!FLOAT_WEIGHT_DTYPES.includes(dtype) || !shapeMatches) {
      mismatched.push(`${name}: expected F32/F16/BF16 [${parameter.shape.join(', ')}], got ${dtype} [${shape.join(', ')}]`);
      continue;
    }
    plan.push({ name, path, module: modules.get(path)!, parameterName: name.slice(cut + 1) });
  }
  const expected = new Set(model.namedParameters().map(([name]) => name));
  const ignored = model.config.tie_word_embeddings ? new Set(['lm_head.weight']) : new Set<string>();
  const unexpected = checkpoint.tensorNames.filter((name) => !expected.has(name) && !ignored.has(name));
  if (missing.length || unexpected.length || mismatched.length) {
    const problems = [
      missing.length ? `missing (${missing.length}): ${missing.join(', ')}` : '',
      unexpected.length ? `unexpected (${unexpected.length}): ${unexpected.join(', ')}` : '',
      mismatched.length ? `mis-shaped (${mismatched.length}): ${mismatched.join('; ')}` : '',
    ].filter(Boolean);
    throw new StateDictError(
      `${checkpoint.path}: checkpoint does not fit MistralForCausalLM (${model.config.num_hidden_layers} layers): ${problems.join(' | ')}`,
      missing,
      unexpected,
      mismatched,
    );
  }
  return plan;
}
