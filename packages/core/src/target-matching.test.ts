import { describe, expect, it } from 'vitest';
import { isTargetModule, type TargetSelection } from './adapter/target-matching.js';

// PEFT 0.10 tests/test_tuners_utils.py REGEX_TEST_CASES: key, target_modules, layers_to_transform, layers_pattern, expected.
const cases: [string, TargetSelection['targetModules'], number[] | null, string[] | string | null, boolean][] = [
  ['', [], null, null, false],
  ['foo', ['foo'], null, null, true],
  ['foo', ['bar'], null, null, false],
  ['foo', 'foo', null, null, true],
  ['foo', '.*oo', null, null, true],
  ['foo', '.*bar.*', null, null, false],
  ['foobar', '.*oba.*', null, null, true],
  ['foo.bar.1.baz', ['baz'], [1], ['bar'], true],
  ['foo.bar.1.baz', ['baz'], [0], ['bar'], false],
  ['foo.bar.1.baz', ['baz'], [2], ['bar'], false],
  ['foo.bar.10.baz', ['baz'], [1], ['bar'], false],
  ['foo.bar.1.baz', ['baz'], [0, 1, 2], ['bar'], true],
  ['foo.bar.7.baz', ['baz'], [], ['bar'], true],
  ['foo.whatever.1.baz', ['baz'], [1], [], true],
  ['foo.whatever.1.baz', ['baz'], [0], [], false],
  ['foo.whatever.1.baz', ['baz'], [1], '', true],
  ['foo.whatever.1.baz', ['baz'], [0], '', false],
  ['foo.whatever.1.baz', ['baz'], [1], null, true],
  ['foo.whatever.1.baz', ['baz'], [0], null, false],
  ['transformer.h.1.attn.attention.q_proj.foo', ['q_proj'], null, null, false],
  ['transformer.h.1.attn.attention.q_proj', ['q_proj'], [1], ['h'], true],
  ['transformer.h.1.attn.attention.q_proj', ['q_proj'], [0], ['h'], false],
  ['foo.bar.q_proj', ['q_proj'], null, null, true],
  ['foo.bar.1.baz', ['baz'], [1], ['foo'], false],
  ['foo.bar.1.baz', ['baz'], [1], ['baz'], false],
  ['bar.1.baz', ['baz'], [1], ['bar'], false],
  ['foo.bar.001.baz', ['baz'], [1], ['bar'], true],
  ['foo.bar.1.spam.2.baz', ['baz'], [1], ['bar'], true],
  ['foo.bar.2.spam.1.baz', ['baz'], [1], ['bar'], false],
  ['blocks.1.weight', ['weight'], [1], ['blocks'], false],
  ['mlp.blocks.1.weight', ['weight'], [1], ['blocks'], true],
  ['mlp.blocks.1.bias', ['weight'], [1], ['blocks'], false],
];

describe('isTargetModule (PEFT 0.10 matching table)', () => {
  it.each(cases)('%s with %j, layers %j, pattern %j → %s', (key, targetModules, layersToTransform, layersPattern, expected) => {
    expect(isTargetModule(key, { targetModules, layersToTransform, layersPattern })).toBe(expected);
  });

  it('ignores the layer filter for exact names and regex strings', () => {
    expect(isTargetModule('model.layers.3.q', { targetModules: ['model.layers.3.q'], layersToTransform: [0] })).toBe(true);
    expect(isTargetModule('model.layers.3.q', { targetModules: '.*q', layersToTransform: [0] })).toBe(true);
  });

  it('accepts a single int layer filter', () => {
    expect(isTargetModule('model.layers.3.q', { targetModules: ['q'], layersToTransform: 3 })).toBe(true);
    expect(isTargetModule('model.layers.3.q', { targetModules: ['q'], layersToTransform: 2 })).toBe(false);
  });
});
