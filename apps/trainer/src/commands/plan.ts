import { Option, type Command } from 'commander';
import { Embedding, Linear, PeftError, countParameters, isLinearLike, type Module } from '@peft-ts/core';
import { isHalfDtype } from '@peft-ts/core/internal';
import { parseLoraConfigJson } from '@peft-ts/config';
import { ADAPTER_CONFIG_FILE, LoraModel } from '@peft-ts/lora';
import { stat } from 'node:fs/promises';
import { quantizedWeightBytes } from '@peft-ts/quant';
import { quantizedParameterCount } from '@peft-ts/quant/internal';
import { positionLimit } from '@peft-ts/model-common/internal';
import { adapterMethod } from '../session/adapter-method.js';
import type { QuantizationShorthand } from '../session/load-model.js';
import { parseModelConfig, presetModelConfig, presetNames } from '../session/model-registry.js';
import { addDeprecatedAlias } from './deprecated-alias.js';
import { numberOption } from './numeric-option.js';
import { readOptionFile } from './option-path.js';

export type MemoryPlan = { weights: number; adapters: number; gradients: number; optimizerState: number; activations: number; total: number };

export type RunPlan = {
  layers: number;
  baseParams: number;
  /** PEFT's "all params" (`get_nb_trainable_parameters`): a 4-bit weight as bnb's packed bytes × 2. */
  totalParams: number;
  trainableParams: number;
  /** What `sum(p.numel() for p in model.parameters())` prints in PyTorch with bitsandbytes (4-bit weights count half). */
  torchNumel: number;
  quantization: QuantizationShorthand | null;
  batchSize: number;
  sequenceLength: number;
  gradientCheckpointing: boolean;
  memoryBytes: MemoryPlan;
};

/** Linear layers the quantizer replaces (every linear but the output head), by module path. */
function quantizedLinearPaths(model: Module): Set<string> {
  return new Set(
    model
      .namedModules()
      .filter(([path, module]) => path !== 'lm_head' && !path.split('.').some((part) => part.startsWith('lora_')) && isLinearLike(module))
      .map(([path]) => path),
  );
}

/**
 * Layers, parameters and the memory a run needs, from shapes alone (a shape-only model: nothing
 * is allocated, so a 7B plan takes milliseconds). Activation bytes are an estimate per token of
 * what the backward pass keeps (one layer's worth when checkpointing).
 */
export async function planRun(options: {
  model: string;
  adapterConfig?: string;
  quant?: QuantizationShorthand;
  batchSize?: number;
  sequenceLength?: number;
  gradientCheckpointing?: boolean;
}): Promise<RunPlan> {
  const { family, config, source } = await readPlannedConfig(options.model);
  const decoder = family.decoderConfig(config);
  if (options.sequenceLength !== undefined && options.sequenceLength > positionLimit(decoder)) {
    throw new PeftError(`--max-seq-length ${options.sequenceLength}: past max_position_embeddings ${decoder.max_position_embeddings} (${source})`);
  }
  const model = family.create(config, { meta: true });
  const baseParams = countParameters(model).total;
  if (options.adapterConfig) {
    const adapter = await readOptionFile('--adapter-config', options.adapterConfig, ADAPTER_CONFIG_FILE);
    const loraConfig = parseLoraConfigJson(adapter.text, { source: adapter.source });
    new LoraModel(model, { ...loraConfig, inferenceMode: false }, { method: adapterMethod });
  }
  // The shape-only model is float32 throughout, so its counts are also the elements gradients and AdamW state take.
  const counts = countParameters(model);
  const trainableElements = options.adapterConfig ? counts.trainable : counts.total;
  const quantized = options.quant ? quantizedLinearPaths(model) : new Set<string>();
  const halfBase = isHalfDtype(decoder.torch_dtype);
  let torchNumel = 0;
  // PEFT's "all params" of the quantized model: the shape-only model is float, its quantized weights count as bnb's.
  let totalParams = 0;
  let weights = 0;
  const seen = new Set<unknown>();
  for (const [path, module] of model.namedModules()) {
    for (const [name, parameter] of module.directParameters()) {
      if (seen.has(parameter)) continue;
      seen.add(parameter);
      const isQuantizedWeight = name === 'weight' && quantized.has(path);
      if (isQuantizedWeight && options.quant === '4bit') {
        torchNumel += Math.ceil(parameter.size / 2);
        totalParams += quantizedParameterCount(parameter.shape, '4bit');
        weights += quantizedWeightBytes([...parameter.shape], { kind: '4bit', compressStatistics: true }).totalBytes;
      } else if (isQuantizedWeight && options.quant === '8bit') {
        torchNumel += parameter.size;
        totalParams += quantizedParameterCount(parameter.shape, 'int8');
        weights += quantizedWeightBytes([...parameter.shape], { kind: 'int8' }).totalBytes;
      } else {
        torchNumel += parameter.size;
        totalParams += parameter.logicalSize;
        // A half checkpoint's frozen linear and embedding weights stay half in memory (HalfLinear, HalfEmbedding).
        const half = halfBase && name === 'weight' && (module instanceof Linear || module instanceof Embedding);
        if (!parameter.requiresGrad || !options.adapterConfig) weights += half ? parameter.byteLength / 2 : parameter.byteLength;
      }
    }
  }
  const trainableParams = options.adapterConfig ? counts.trainable : totalParams;
  const batchSize = options.batchSize ?? 1;
  const sequenceLength = options.sequenceLength ?? 512;
  const checkpointing = options.gradientCheckpointing ?? false;
  const layers = model.decoderLayers().length;
  const tokens = batchSize * sequenceLength;
  const { hidden_size: hidden, intermediate_size: intermediate, num_attention_heads: heads, vocab_size: vocab } = model.decoderConfig;
  // Floats kept per token by one decoder layer for backward: norms, projections, rotary, MLP, attention rows.
  const perLayer = 16 * hidden + 5 * intermediate + 3 * heads * sequenceLength;
  const keptLayers = checkpointing ? 1 : layers;
  const activations = 4 * tokens * (perLayer * keptLayers + (checkpointing ? layers * hidden : 0) + 3 * vocab);
  const adapters = options.adapterConfig ? trainableElements * 4 : 0;
  const memoryBytes: MemoryPlan = {
    weights,
    adapters,
    gradients: trainableElements * 4,
    optimizerState: trainableElements * 8,
    activations,
    total: weights + adapters + trainableElements * 12 + activations,
  };
  return {
    layers,
    baseParams,
    totalParams,
    trainableParams,
    torchNumel: torchNumel,
    quantization: options.quant ?? null,
    batchSize,
    sequenceLength,
    gradientCheckpointing: checkpointing,
    memoryBytes,
  };
}

/** `--model`: a directory or config.json (its family by `model_type`), or a preset name when no such path exists. */
async function readPlannedConfig(model: string) {
  const preset = presetModelConfig(model);
  const exists = await stat(model).then(
    () => true,
    () => false,
  );
  if (preset && !exists) return { ...preset, source: `preset ${model}` };
  const { text, source } = await readOptionFile('--model', model, 'config.json');
  return { ...parseModelConfig(text, source), source };
}

const gib = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

export function formatPlan(plan: RunPlan): string {
  const count = (value: number) => value.toLocaleString('en-US');
  const memory = plan.memoryBytes;
  return [
    `layers            ${plan.layers}`,
    `base params       ${count(plan.baseParams)}`,
    `total params      ${count(plan.totalParams)}  (shared tensors once)`,
    `trainable params  ${count(plan.trainableParams)}  (${((100 * plan.trainableParams) / plan.totalParams).toFixed(4)} %)`,
    `torch numel       ${count(plan.torchNumel)}${plan.quantization === '4bit' ? '  (4-bit weights count half, as bitsandbytes stores them)' : ''}`,
    `memory (batch ${plan.batchSize} × ${plan.sequenceLength}${plan.gradientCheckpointing ? ', gradient checkpointing' : ''}):`,
    `  weights         ${gib(memory.weights)}${plan.quantization ? ` (${plan.quantization})` : ''}`,
    `  adapters        ${gib(memory.adapters)}`,
    `  gradients       ${gib(memory.gradients)}`,
    `  optimizer state ${gib(memory.optimizerState)}  (AdamW: 2 × trainable)`,
    `  activations     ${gib(memory.activations)}  (estimate)`,
    `  total           ${gib(memory.total)}`,
  ].join('\n');
}

export function registerPlanCommand(program: Command): void {
  const command = program
    .command('plan')
    .description('layers, parameters and memory of a run, from shapes alone (no weights loaded)')
    .requiredOption('--model <dir|config.json|preset>', `model directory, its config.json, or a preset (${presetNames().join(', ')})`)
    .option('--adapter-config <file|dir>', 'adapter_config.json (PEFT format), or an adapter directory, to plan adapters and layer replication')
    .addOption(new Option('--quant <bits>', 'quantized base weights').choices(['4bit', '8bit']))
    .option('--per-device-train-batch-size <size>', 'sequences per step, for the activation estimate', numberOption('positiveInteger'))
    .option('--max-seq-length <length>', 'tokens per sequence, for the activation estimate', numberOption('positiveInteger'))
    .option('--gradient-checkpointing', 'estimate activations with per-layer checkpointing')
    .option('--json', 'print JSON');
  addDeprecatedAlias(command, '--batch-size', '--per-device-train-batch-size');
  addDeprecatedAlias(command, '--seq-length', '--max-seq-length').action(async (options) => {
    const plan = await planRun({
      model: options.model,
      adapterConfig: options.adapterConfig,
      quant: options.quant,
      batchSize: options.perDeviceTrainBatchSize,
      sequenceLength: options.maxSeqLength,
      gradientCheckpointing: options.gradientCheckpointing,
    });
    process.stdout.write(`${options.json ? JSON.stringify(plan, null, 2) : formatPlan(plan)}\n`);
  });
}
