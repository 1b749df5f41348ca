import { serializeTrainingConfig, type TrainingConfig } from '@peft-ts/config';

/** Keys that say how a run was started rather than what it trains. */
const startupKeys = new Set(['overwrite_output_dir']);

function flatten(value: Record<string, unknown>, prefix = '', into = new Map<string, unknown>()): Map<string, unknown> {
  for (const [key, member] of Object.entries(value)) {
    const path = `${prefix}${key}`;
    if (member !== null && typeof member === 'object' && !Array.isArray(member)) flatten(member as Record<string, unknown>, `${path}.`, into);
    else into.set(path, member);
  }
  return into;
}

const show = (value: unknown) =>
  value === undefined ? '(not set)' : typeof value === 'string' || typeof value === 'number' ? String(value) : JSON.stringify(value);

/**
 * The settings that differ between a checkpoint's saved training config and the current one, as
 * `learning_rate 0.0001 → 0.0002` (nested keys dotted, e.g. `lora.r`). Both sides go through the same JSON form, so
 * a key added or removed since the checkpoint was written shows as `(not set)` instead of failing.
 */
export function trainingConfigChanges(saved: Record<string, unknown>, current: TrainingConfig): string[] {
  const before = flatten(saved);
  const after = flatten(JSON.parse(serializeTrainingConfig(current)) as Record<string, unknown>);
  const keys = [...after.keys(), ...[...before.keys()].filter((key) => !after.has(key))];
  return keys
    .filter((key) => !startupKeys.has(key) && JSON.stringify(before.get(key)) !== JSON.stringify(after.get(key)))
    .map((key) => `${key} ${show(before.get(key))} → ${show(after.get(key))}`);
}
