import { Option, type Command } from 'commander';
import { trainingBackends } from '@peft-ts/config';
import { initBackend, type BackendRequest } from '@peft-ts/core/backend';
import { attachAdapters, loadBaseModel, quantizationFromShorthand, type QuantizationShorthand } from '../session/load-model.js';
import { existingPath } from './option-path.js';

export type ModelOptions = {
  model: string;
  adapter: string[];
  active?: string;
  quant?: QuantizationShorthand;
  backend: BackendRequest;
  strict?: boolean;
};

/** Options every inference command shares: model, adapters, quantization, backend. */
export function addModelOptions(command: Command): Command {
  return command
    .requiredOption('--model <dir>', 'base model directory')
    .option('--adapter <dir>', 'PEFT adapter directory (repeatable; named after their directories when several)', (value: string, list: string[]) => [...list, value], [])
    .option('--active <name>', 'adapter to activate when several are loaded')
    .addOption(new Option('--quant <bits>', 'quantize the base on load').choices(['4bit', '8bit']))
    .addOption(new Option('--backend <name>', 'tfjs backend').choices([...trainingBackends]).default('auto'))
    .option('--strict', 'refuse, instead of warning about, NaN/Inf weights and unknown adapter_config.json keys');
}

/** Initialises the backend (saying which) and loads the model with its adapters. */
export async function openModel(options: ModelOptions, needsTokenizer = true) {
  await existingPath('--model', options.model);
  for (const adapter of options.adapter) await existingPath('--adapter', adapter);
  const backend = await initBackend(options.backend);
  process.stderr.write(`backend: ${backend.name} (${backend.detail})\n`);
  const loaded = await loadBaseModel(options.model, { quantization: quantizationFromShorthand(options.quant), needsTokenizer, strict: options.strict });
  const lora = await attachAdapters(loaded.model, options.adapter, { active: options.active, strict: options.strict });
  loaded.model.eval();
  return { ...loaded, lora };
}
