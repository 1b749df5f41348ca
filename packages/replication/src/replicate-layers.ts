import { PeftError, type DecoderLayer, type DecoderModel, type Parameter } from '@peft-ts/core';
import { brandClass, copyParameter } from '@peft-ts/core/internal';

/** `[start, end)` over the original decoder-layer indices (mergekit passthrough convention). */
export type LayerRange = readonly [start: number, end: number];

export class ReplicationError extends PeftError {
  static {
    brandClass(this, '@peft-ts/replication:ReplicationError');
  }
}

/**
 * The source layer of every new position: `[[0,4],[2,5]]` over 5 layers → `[0,1,2,3,2,3,4]`.
 * Unlike PEFT 0.10 (which validates nothing), a range out of bounds or reversed is an error.
 */
export function replicationMap(layerCount: number, ranges: readonly LayerRange[]): number[] {
  if (!Array.isArray(ranges) || ranges.length === 0) {
    throw new ReplicationError('layer_replication: expected a non-empty list of [start, end) ranges');
  }
  const map: number[] = [];
  ranges.forEach((range, index) => {
    const where = `layer_replication[${index}] = ${JSON.stringify(range)}`;
    if (!Array.isArray(range) || range.length !== 2 || !range.every((value) => Number.isInteger(value))) {
      throw new ReplicationError(`${where}: expected a pair of integers [start, end)`);
    }
    const [start, end] = range;
    if (start < 0 || end > layerCount) {
      throw new ReplicationError(`${where}: out of bounds for a model with ${layerCount} layers (valid: 0 ≤ start ≤ end ≤ ${layerCount})`);
    }
    if (start > end) throw new ReplicationError(`${where}: reversed range (start must not exceed end)`);
    for (let layer = start; layer < end; layer++) map.push(layer);
  });
  return map;
}

const applied = new WeakMap<DecoderModel, { ranges: LayerRange[]; map: number[] }>();

/** The ranges a model was replicated with, or undefined. */
export function appliedReplication(model: DecoderModel): LayerRange[] | undefined {
  return applied.get(model)?.ranges;
}

/**
 * Rebuilds the decoder stack from the ranges. Every position is a new layer object whose
 * parameters are the source layer's Parameter objects (no memory is added), numbered by its new
 * position (its KV-cache slot); the model config's layer count follows. Runs once per model:
 * the same map again is a no-op, a different one is refused (PEFT 0.10 would stack it again).
 */
export function replicateLayers(model: DecoderModel, ranges: readonly LayerRange[]): number[] {
  const previous = applied.get(model);
  if (previous) {
    if (JSON.stringify(previous.ranges) === JSON.stringify(ranges)) return previous.map;
    throw new ReplicationError(
      `layer_replication: the model was already replicated with ${JSON.stringify(previous.ranges)}; refusing a second map ${JSON.stringify(ranges)}`,
    );
  }
  const layers = model.decoderLayers().toArray();
  const map = replicationMap(layers.length, ranges);
  const replicas = map.map((source, position) => {
    const replica = layers[source].cloneSharingParameters();
    replica.layerIndex = position;
    return replica;
  });
  model.setDecoderLayers(replicas);
  applied.set(model, { ranges: ranges.map(([start, end]) => [start, end] as const), map });
  return map;
}

/**
 * Gives every position its own copy of the weights it shares, so each can be merged on its own
 * (the step PEFT 0.10 misses, corrupting shared weights). Returns the bytes newly allocated.
 */
export function unshareLayerParameters(model: DecoderModel): number {
  const seen = new Set<Parameter>();
  let allocated = 0;
  for (const layer of model.decoderLayers()) {
    for (const [, module] of (layer as DecoderLayer).namedModules()) {
      for (const [name, parameter] of module.directParameters()) {
        if (!seen.has(parameter)) {
          seen.add(parameter);
          continue;
        }
        const copy = copyParameter(parameter);
        module.setParameter(name, copy);
        allocated += copy.byteLength;
      }
    }
  }
  return allocated;
}
