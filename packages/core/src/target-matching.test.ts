import { describe, expect, it } from 'vitest';
import { resolveAllLinear } from './adapter/inject-adapter.js';
import { isTargetModule, layerIndexOf, matchFromStart, type TargetSelection } from './adapter/target-matching.js';
import { Linear } from './layers/linear.js';
import { Module } from './module.js';

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

describe('regexes anchored as Python anchors them', () => {
  it('matchFromStart is re.match: a top-level | keeps every alternative anchored at the start', () => {
    expect(matchFromStart('.*\\.q_proj|v_proj$', 'model.layers.0.q_proj')).not.toBeNull();
    expect(matchFromStart('.*\\.q_proj|v_proj$', 'model.layers.0.xv_proj')).toBeNull();
    expect(matchFromStart('.*\\.q_proj|v_proj$', 'model.layers.0.v_proj')).toBeNull();
    expect(matchFromStart('.*\\.q_proj|v_proj$', 'v_proj')).not.toBeNull();
  });

  it('layers_pattern with a top-level |: an alternative matching mid-key is no match, one without the index group is an error', () => {
    expect(layerIndexOf('model.h.1.attn.q_proj', 'layers|h')).toBeNull();
    expect(isTargetModule('model.h.1.attn.q_proj', { targetModules: ['q_proj'], layersToTransform: [1], layersPattern: 'layers|h' })).toBe(false);
    expect(() => layerIndexOf('model.layers.1.q_proj', 'layers|h')).toThrow(/layers_pattern 'layers\|h'.*without a layer index.*\(\?:layers\|h\)/);
    expect(layerIndexOf('model.h.1.attn.q_proj', '(?:layers|h)')).toBe(1);
  });

  it('target_modules as a string is re.fullmatch', () => {
    expect(isTargetModule('model.layers.0.xv_proj', { targetModules: '.*\\.q_proj|.*\\.v_proj' })).toBe(false);
    expect(isTargetModule('model.layers.0.v_proj', { targetModules: '.*\\.q_proj|.*\\.v_proj' })).toBe(true);
    expect(isTargetModule('model.layers.0.v_proj.extra', { targetModules: '.*\\.v_proj' })).toBe(false);
  });
});

class Tree extends Module {
  readonly kind = 'tree';
  constructor(
    children: Record<string, Module>,
    readonly outputEmbeddingKey?: string,
  ) {
    super();
    for (const [name, child] of Object.entries(children)) this.registerModule(name, child);
  }
  forward(): never {
    throw new Error('not used');
  }
}

describe('all-linear (PEFT 0.10 _maybe_include_all_linear_layers)', () => {
  it('removes the output embedding\'s name from the names, so a layer named like the head is left out too', () => {
    const model = new Tree({ block: new Tree({ lm_head: new Linear(2, 2, { meta: true }), proj: new Linear(2, 2, { meta: true }) }), lm_head: new Linear(2, 2, { meta: true }) }, 'lm_head');
    expect(resolveAllLinear(model)).toEqual(['proj']);
  });

  it('removes the head\'s full path, which leaves a nested head\'s last name in (as PEFT does)', () => {
    const model = new Tree({ block: new Tree({ out: new Linear(2, 2, { meta: true }) }), head: new Tree({ out: new Linear(2, 2, { meta: true }) }) }, 'head.out');
    expect(resolveAllLinear(model)).toEqual(['out']);
  });
});
