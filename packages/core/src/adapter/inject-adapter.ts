import { AdapterInjectionError } from '../errors.js';
import type { Module } from '../module.js';
import { isLinearLike } from '../weight-access.js';
import type { AdapterMethod, AdapterTargetModel, DispatchOptions } from './adapter-method.js';
import { isTargetModule, type TargetSelection } from './target-matching.js';

/**
 * PEFT's `"all-linear"`: the last name component of every linear layer, less the output embedding's name. As in
 * PEFT 0.10 that name is removed from the set of names, so no layer called like the head is targeted either; and it
 * is the head's full path, so a head nested below the top level (`head.out`) is not left out.
 */
export function resolveAllLinear(model: AdapterTargetModel): string[] {
  const names = new Set<string>();
  for (const [key, module] of model.namedModules()) {
    if (key && isLinearLike(module)) names.add(key.split('.').pop()!);
  }
  if (model.outputEmbeddingKey !== undefined) names.delete(model.outputEmbeddingKey);
  return [...names].sort();
}

/** The config's target list after resolving `null` (model default) and `all-linear`. */
export function resolveTargetSelection<CONFIG extends TargetSelection>(model: AdapterTargetModel, config: CONFIG): CONFIG {
  const { targetModules } = config;
  if (targetModules === null) {
    if (!model.defaultTargetModules) {
      throw new AdapterInjectionError('target_modules: no default for this model; please specify target_modules');
    }
    return { ...config, targetModules: [...model.defaultTargetModules] };
  }
  if (typeof targetModules === 'string' && targetModules.toLowerCase() === 'all-linear') {
    return { ...config, targetModules: resolveAllLinear(model) };
  }
  return config;
}

export type InjectionResult = { readonly targetedKeys: string[] };

/**
 * Wraps every module the config selects with the first dispatcher that accepts it. All problems
 * are reported together: nothing matched, or matched modules no dispatcher supports.
 */
export function injectAdapter<CONFIG extends TargetSelection>(options: {
  model: AdapterTargetModel;
  method: AdapterMethod<CONFIG>;
  config: CONFIG;
  adapterName: string;
  /** Modules handled elsewhere (e.g. modules_to_save), skipped with everything inside them, as PEFT does. */
  skipKeys?: ReadonlySet<string>;
}): InjectionResult {
  const { model, method, adapterName } = options;
  const config = resolveTargetSelection(model, options.config);
  const candidates = model
    .namedModules()
    .filter(([key]) => key !== '' && !isSkipped(key, options.skipKeys) && isTargetModule(key, config));
  // A module nested inside an adapter layer (its base layer, its lora_A) is never a target itself.
  const insideAdapter = (key: string) => key.split('.').some((part) => part.startsWith(method.parameterPrefix) || part === 'base_layer');
  const targets = candidates.filter(([key]) => !insideAdapter(key));
  if (targets.length === 0) {
    const wanted = typeof config.targetModules === 'string' ? config.targetModules : JSON.stringify(config.targetModules);
    throw new AdapterInjectionError(
      `target_modules ${wanted} not found in the base model (${method.type}, adapter '${adapterName}'); ` +
        `module names look like: ${sampleKeys(model)}`,
    );
  }
  const plan: [string, Module][] = [];
  const unsupported: string[] = [];
  for (const [key, target] of targets) {
    const replacement = dispatch(method, { target, key, adapterName, config });
    if (replacement) plan.push([key, replacement]);
    else unsupported.push(`${key} (${target.kind})`);
  }
  if (unsupported.length) {
    throw new AdapterInjectionError(
      `${method.type} cannot wrap ${unsupported.join(', ')}: supported layers are ${supportedKinds(method)}`,
    );
  }
  for (const [key, replacement] of plan) {
    if (model.getSubmodule(key) !== replacement) model.setSubmodule(key, replacement);
  }
  return { targetedKeys: plan.map(([key]) => key) };
}

function isSkipped(key: string, skipKeys: ReadonlySet<string> | undefined): boolean {
  if (!skipKeys) return false;
  for (const skip of skipKeys) if (key === skip || key.startsWith(`${skip}.`)) return true;
  return false;
}

function dispatch<CONFIG extends TargetSelection>(method: AdapterMethod<CONFIG>, options: DispatchOptions<CONFIG>): Module | undefined {
  for (const dispatcher of method.dispatchers) {
    const result = dispatcher.create(options);
    if (result) return result;
  }
  return undefined;
}

function supportedKinds<CONFIG extends TargetSelection>(method: AdapterMethod<CONFIG>): string {
  return method.dispatchers.map((dispatcher) => dispatcher.supports).join(', ') || 'none registered';
}

function sampleKeys(model: Module): string {
  const keys = model.namedModules().map(([key]) => key).filter(Boolean);
  return keys.slice(0, 8).join(', ') + (keys.length > 8 ? ', …' : '');
}
