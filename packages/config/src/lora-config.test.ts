import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from './config-error.js';
import {
  createLoraConfig,
  type LoraConfig,
  loraConfigFileSchema,
  loraConfigFromSnakeCase,
  loraConfigToSnakeCase,
  parseLoraConfigJson,
  parseLoraConfigObject,
  serializeLoraConfig,
} from './lora-config.js';

const fixturesDirectory = new URL('../../../fixtures/peft-0.10/', import.meta.url);

/** Every adapter_config.json PEFT 0.10 wrote for the fixtures, by `<model>/<case>`. */
function fixtureConfigs(): [string, string][] {
  return ['mistral', 'conv'].flatMap((model) =>
    readdirSync(new URL(`${model}/`, fixturesDirectory), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .flatMap((entry) => {
        const file = new URL(`${model}/${entry.name}/adapter/adapter_config.json`, fixturesDirectory);
        try {
          return [[`${model}/${entry.name}`, readFileSync(file, 'utf8')] as [string, string]];
        } catch {
          return []; // e.g. mistral/base has no adapter
        }
      }),
  );
}

/** PEFT writes target_modules in Python set order, which is arbitrary: sort that array's lines for comparison. */
function sortTargetModuleLines(text: string): string {
  return text.replace(/("target_modules": \[\n)([^\]]*?)(\n {2}\])/, (_, open: string, body: string, close: string) => {
    const lines = body.split(',\n').sort();
    return open + lines.join(',\n') + close;
  });
}

function errorFrom(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const source = 'adapter_config.json';
const parseStrict = (value: unknown) => parseLoraConfigObject(value, { source, strict: true });

const defaultFileText = `{
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": null,
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 8,
  "lora_dropout": 0.0,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 8,
  "rank_pattern": {},
  "revision": null,
  "target_modules": null,
  "task_type": null,
  "use_dora": false,
  "use_rslora": false
}`;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('defaults', () => {
  it('has exactly the 24 keys of a PEFT 0.10 adapter_config.json', () => {
    expect(Object.keys(loraConfigFileSchema.shape).sort()).toEqual([
      'alpha_pattern', 'auto_mapping', 'base_model_name_or_path', 'bias', 'fan_in_fan_out', 'inference_mode',
      'init_lora_weights', 'layer_replication', 'layers_pattern', 'layers_to_transform', 'loftq_config', 'lora_alpha',
      'lora_dropout', 'megatron_config', 'megatron_core', 'modules_to_save', 'peft_type', 'r', 'rank_pattern',
      'revision', 'target_modules', 'task_type', 'use_dora', 'use_rslora',
    ]);
  });

  it('fills in PEFT defaults for an empty config', () => {
    const expected: LoraConfig = {
      peftType: 'LORA',
      autoMapping: null,
      baseModelNameOrPath: null,
      revision: null,
      taskType: null,
      inferenceMode: false,
      r: 8,
      targetModules: null,
      loraAlpha: 8,
      loraDropout: 0,
      fanInFanOut: false,
      bias: 'none',
      useRslora: false,
      modulesToSave: null,
      initLoraWeights: true,
      layersToTransform: null,
      layersPattern: null,
      rankPattern: {},
      alphaPattern: {},
      megatronConfig: null,
      megatronCore: 'megatron.core',
      loftqConfig: {},
      useDora: false,
      layerReplication: null,
    };
    expect(createLoraConfig()).toEqual(expected);
    expect(createLoraConfig({})).toEqual(expected);
    expect(parseStrict({})).toEqual(expected);
  });

  it('serializes an empty config to exactly the PEFT default file', () => {
    expect(serializeLoraConfig({})).toBe(defaultFileText);
  });

  it('gives each config its own pattern objects', () => {
    const first = createLoraConfig();
    first.rankPattern.q_proj = 2;
    expect(createLoraConfig().rankPattern).toEqual({});
  });
});

describe('PEFT 0.10 fixture files', () => {
  const fixtures = fixtureConfigs();

  it('finds the fixture files', () => {
    expect(fixtures.map(([name]) => name).sort()).toEqual([
      'conv/dora', 'conv/lora', 'mistral/dora', 'mistral/embedding', 'mistral/layer_replication', 'mistral/lora',
      'mistral/patterns', 'mistral/rslora',
    ]);
  });

  it.each(fixtures)('%s parses strictly and serializes back to the same bytes', (_, text) => {
    const onWarning = vi.fn();
    const config = parseLoraConfigJson(text, { source, strict: true, onWarning });
    expect(onWarning).not.toHaveBeenCalled();
    const written = serializeLoraConfig(config);
    expect(sortTargetModuleLines(written)).toBe(sortTargetModuleLines(text));
    expect(written.endsWith('}')).toBe(true);
    const original = JSON.parse(text) as { target_modules: unknown };
    const rewritten = JSON.parse(written) as { target_modules: unknown };
    if (Array.isArray(original.target_modules)) {
      expect(new Set(rewritten.target_modules as string[])).toEqual(new Set(original.target_modules));
    } else {
      expect(rewritten.target_modules).toBe(original.target_modules);
    }
  });

  it.each(fixtures)('%s converts to camelCase and back unchanged', (_, text) => {
    const file = loraConfigFileSchema.parse(JSON.parse(text));
    expect(loraConfigToSnakeCase(loraConfigFromSnakeCase(file))).toEqual(JSON.parse(text));
  });

  it('reads the field values of the fixtures', () => {
    const byName = new Map(fixtures.map(([name, text]) => [name, parseLoraConfigJson(text)]));
    const dora = byName.get('mistral/dora');
    expect(dora).toMatchObject({ useDora: true, r: 4, loraAlpha: 8, taskType: 'CAUSAL_LM', initLoraWeights: false });
    expect(new Set(dora?.targetModules)).toEqual(
      new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
    );
    expect(byName.get('mistral/layer_replication')?.layerReplication).toEqual([
      [0, 4],
      [2, 5],
    ]);
    expect(byName.get('mistral/rslora')?.useRslora).toBe(true);
    expect(byName.get('mistral/patterns')).toMatchObject({
      targetModules: '.*\\.layers\\.[0-2]\\.(self_attn\\.(q_proj|v_proj)|mlp\\.down_proj)',
      rankPattern: { 'layers.1.self_attn.v_proj': 3, q_proj: 2 },
      alphaPattern: { down_proj: 3, v_proj: 16 },
    });
    expect(byName.get('conv/lora')).toMatchObject({
      autoMapping: { base_model_class: 'Sequential', parent_library: 'torch.nn.modules.container' },
      baseModelNameOrPath: null,
      taskType: null,
    });
  });
});

describe('keys unknown to PEFT 0.10', () => {
  const [, loraText] = fixtureConfigs().find(([name]) => name === 'mistral/lora') as [string, string];
  const newerFile = { ...JSON.parse(loraText), peft_version: '0.18.0', exclude_modules: null, lora_bias: false, use_qalora: false };

  it('are dropped with one warning naming them', () => {
    const onWarning = vi.fn();
    const config = parseLoraConfigJson(JSON.stringify(newerFile), { source, onWarning });
    expect(config).toEqual(parseLoraConfigJson(loraText));
    expect(onWarning).toHaveBeenCalledTimes(1);
    const warning = onWarning.mock.calls[0][0] as string;
    expect(warning).toMatch(/^adapter_config\.json: ignoring unknown keys/);
    for (const key of ['peft_version', 'exclude_modules', 'lora_bias', 'use_qalora']) expect(warning).toContain(`"${key}"`);
    expect(warning).not.toContain('did you mean');
  });

  it('are rejected in strict mode', () => {
    const error = errorFrom(() => parseLoraConfigJson(JSON.stringify(newerFile), { source, strict: true }));
    expect(error.message).toBe(
      'adapter_config.json: unknown keys "peft_version", "exclude_modules", "lora_bias", "use_qalora"',
    );
  });

  it('warn through console.warn when no handler is given', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    parseLoraConfigObject({ peft_version: '0.18.0' });
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('"peft_version"'));
  });

  it('suggest the closest known key for a typo: a warning when lenient, an error when strict', () => {
    const onWarning = vi.fn();
    const config = parseLoraConfigObject({ lora_alpah: 32 }, { source, onWarning });
    expect(config.loraAlpha).toBe(8);
    expect(onWarning.mock.calls[0][0]).toContain('"lora_alpah" (did you mean "lora_alpha"?)');
    expect(errorFrom(() => parseStrict({ lora_alpah: 32 })).message).toBe(
      'adapter_config.json: unknown key "lora_alpah" (did you mean "lora_alpha"?)',
    );
  });

  it('are reported inside loftq_config too', () => {
    expect(errorFrom(() => parseStrict({ loftq_config: { loftq_bit: 4 } })).message).toBe(
      'adapter_config.json: loftq_config: unknown key "loftq_bit" (did you mean "loftq_bits"?)',
    );
  });

  it('suggest the camelCase name for snake_case keys given to the code API', () => {
    expect(errorFrom(() => createLoraConfig({ lora_alpha: 16 } as never)).message).toBe(
      'unknown key "lora_alpha" (did you mean "loraAlpha"?)',
    );
  });
});

describe('field errors name the field path and what was expected', () => {
  it.each([
    [{ target_modules: 5 }, 'target_modules: expected a list of names or a regex string, got 5'],
    [{ target_modules: ['q_proj', 1] }, 'target_modules: expected a list of names or a regex string, got ["q_proj",1]'],
    [{ r: 0 }, 'r: expected a positive integer, got 0'],
    [{ r: 2.5 }, 'r: expected a positive integer, got 2.5'],
    [{ r: '8' }, 'r: expected a positive integer, got "8"'],
    [{ lora_alpha: 'x' }, 'lora_alpha: expected a number, got "x"'],
    [{ lora_dropout: 1 }, 'lora_dropout: expected a number in [0, 1), got 1'],
    [{ lora_dropout: -0.1 }, 'lora_dropout: expected a number in [0, 1), got -0.1'],
    [{ bias: 'some' }, 'bias: expected "none", "all" or "lora_only", got "some"'],
    [{ task_type: 'CAUSAL' }, 'task_type: expected one of "SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION" or null, got "CAUSAL"'],
    [{ peft_type: 'LOHA' }, 'peft_type: expected "LORA" (only LoRA adapters are supported), got "LOHA"'],
    [{ init_lora_weights: 'pissa' }, 'init_lora_weights: expected true, false, "gaussian" or "loftq", got "pissa"'],
    [{ init_lora_weights: 'LoftQ' }, 'init_lora_weights: expected true, false, "gaussian" or "loftq", got "LoftQ"'],
    [{ fan_in_fan_out: 1 }, 'fan_in_fan_out: expected true or false, got 1'],
    [{ modules_to_save: 'score' }, 'modules_to_save: expected a list of module names, got "score"'],
    [{ layers_to_transform: [0, -1] }, 'layers_to_transform[1]: expected a non-negative integer, got -1'],
    [{ layers_to_transform: 'all' }, 'layers_to_transform: expected a layer index or a list of layer indices, got "all"'],
    [{ layers_pattern: 3 }, 'layers_pattern: expected a name or a list of names, got 3'],
    [{ rank_pattern: { q_proj: 0 } }, 'rank_pattern.q_proj: expected a positive integer, got 0'],
    [{ rank_pattern: { 'layers.1.v_proj': 1.5 } }, 'rank_pattern["layers.1.v_proj"]: expected a positive integer, got 1.5'],
    [{ alpha_pattern: [] }, 'alpha_pattern: expected an object mapping module names or patterns to alphas, got []'],
    [{ megatron_config: 'x' }, 'megatron_config: expected a JSON object, got "x"'],
    [{ loftq_config: { loftq_bits: 3 } }, 'loftq_config.loftq_bits: expected 2, 4 or 8, got 3'],
    [{ loftq_config: { loftq_iter: 0 } }, 'loftq_config.loftq_iter: expected a positive integer, got 0'],
    [{ layer_replication: [[0, -1]] }, 'layer_replication[0][1]: expected a non-negative integer, got -1'],
    [{ layer_replication: [[0, 1, 2]] }, 'layer_replication[0]: expected a [start, end] pair of layer indices, got [0,1,2]'],
    [{ layer_replication: [[0, 4], 5] }, 'layer_replication[1]: expected a [start, end] pair of layer indices, got 5'],
    [{ layer_replication: 'all' }, 'layer_replication: expected a list of [start, end] layer ranges, got "all"'],
  ])('%j', (file, expected) => {
    expect(errorFrom(() => parseStrict(file)).message).toBe(`${source}: ${expected}`);
  });

  it('lists every problem, one per line, with the issues available separately', () => {
    const error = errorFrom(() => parseStrict({ r: 0, bias: 'x' }));
    expect(error.message.split('\n')).toHaveLength(2);
    expect(error.source).toBe(source);
    expect(error.issues).toEqual([
      { path: 'r', message: 'expected a positive integer, got 0' },
      { path: 'bias', message: 'expected "none", "all" or "lora_only", got "x"' },
    ]);
  });

  it('starts with the path when no source is given', () => {
    expect(errorFrom(() => parseLoraConfigObject({ r: -1 })).message).toBe('r: expected a positive integer, got -1');
  });

  it('rejects a document that is not an object', () => {
    expect(errorFrom(() => parseLoraConfigJson('[]', { source })).message).toBe(
      'adapter_config.json: expected a LoRA config object, got []',
    );
  });

  it('reports invalid JSON with the file name, line and column', () => {
    expect(errorFrom(() => parseLoraConfigJson('{\n  "r": 8,\n  "bias": none\n}', { source })).message).toBe(
      'adapter_config.json: invalid JSON at line 3, column 11: unexpected character "n"',
    );
  });
});

describe('layer_replication', () => {
  it('accepts ranges that overlap or repeat, and an empty list (no replication, as in PEFT)', () => {
    const ranges = [
      [0, 16],
      [8, 24],
      [16, 32],
      [16, 32],
    ];
    expect(parseStrict({ layer_replication: ranges }).layerReplication).toEqual(ranges);
    expect(parseStrict({ layer_replication: [] }).layerReplication).toEqual([]);
  });

  it.each([
    [[[0, 4], [5, 2], [2, 5]], 'layer_replication[1]: range 1 [5, 2] is reversed; expected start < end'],
    [[[0, 4], [3, 3]], 'layer_replication[1]: range 1 [3, 3] is empty; expected start < end'],
    [[[-1, 2]], 'layer_replication[0][0]: expected a non-negative integer, got -1'],
    [[[0, 2.5]], 'layer_replication[0][1]: expected a non-negative integer, got 2.5'],
  ])('rejects the bad range in %j, naming its index', (ranges, expected) => {
    expect(errorFrom(() => parseStrict({ layer_replication: ranges })).message).toBe(`adapter_config.json: ${expected}`);
  });

  it('rejects reversed and empty ranges given in code too', () => {
    expect(errorFrom(() => createLoraConfig({ layerReplication: [[4, 0], [2, 2]] })).message).toBe(
      'layerReplication[0]: range 0 [4, 0] is reversed; expected start < end\nlayerReplication[1]: range 1 [2, 2] is empty; expected start < end',
    );
  });
});

describe("PEFT's __post_init__ validations", () => {
  it('rejects layers_to_transform with a regex target_modules', () => {
    expect(errorFrom(() => parseStrict({ target_modules: '.*q_proj', layers_to_transform: [0] })).message).toBe(
      'adapter_config.json: layers_to_transform: cannot be used when `target_modules` is a str (a regex); list the module names instead',
    );
  });

  it('rejects layers_pattern with a regex target_modules', () => {
    expect(errorFrom(() => parseStrict({ target_modules: '.*q_proj', layers_pattern: 'layers' })).message).toBe(
      'adapter_config.json: layers_pattern: cannot be used when `target_modules` is a str (a regex); list the module names instead',
    );
  });

  it('reports both layer options, in PEFT order', () => {
    const error = errorFrom(() => parseStrict({ target_modules: 'q', layers_to_transform: 1, layers_pattern: ['h'] }));
    expect(error.issues.map((issue) => issue.path)).toEqual(['layers_to_transform', 'layers_pattern']);
  });

  it('accepts the layer options with a list of target modules', () => {
    const config = parseStrict({ target_modules: ['q_proj'], layers_to_transform: [0, 1], layers_pattern: 'layers' });
    expect(config).toMatchObject({ layersToTransform: [0, 1], layersPattern: 'layers' });
  });

  it('rejects DoRA with a megatron config', () => {
    expect(errorFrom(() => parseStrict({ use_dora: true, megatron_config: { tensor_model_parallel_size: 2 } })).message).toBe(
      'adapter_config.json: use_dora: DoRA does not support megatron_core, please set `use_dora` to false',
    );
  });

  it('accepts DoRA with an empty megatron config, which Python treats as unset', () => {
    expect(parseStrict({ use_dora: true, megatron_config: {} }).useDora).toBe(true);
    expect(parseStrict({ use_dora: false, megatron_config: { a: 1 } }).megatronConfig).toEqual({ a: 1 });
  });

  it('requires loftq_config for LoftQ initialisation', () => {
    expect(errorFrom(() => parseStrict({ init_lora_weights: 'loftq', loftq_config: null })).message).toBe(
      'adapter_config.json: loftq_config: must be set when `init_lora_weights` is "loftq"',
    );
    expect(parseStrict({ init_lora_weights: 'loftq' }).loftqConfig).toEqual({});
  });

  it('uses camelCase names in messages about configs written in code', () => {
    expect(errorFrom(() => createLoraConfig({ targetModules: 'q', layersToTransform: 0 })).message).toBe(
      'layersToTransform: cannot be used when `targetModules` is a str (a regex); list the module names instead',
    );
  });
});

describe('init_lora_weights', () => {
  it.each(['gaussian', 'Gaussian', 'GAUSSIAN'])('reads %s as "gaussian", as PEFT compares it lower-cased', (value) => {
    expect(parseStrict({ init_lora_weights: value }).initLoraWeights).toBe('gaussian');
  });

  it.each([true, false, 'loftq'] as const)('keeps %s', (value) => {
    expect(parseStrict({ init_lora_weights: value }).initLoraWeights).toBe(value);
  });
});

describe('serializeLoraConfig', () => {
  it('writes every field of a full config like PEFT', () => {
    const text = serializeLoraConfig({
      targetModules: ['v_proj', 'q_proj', 'v_proj'],
      r: 16,
      loraAlpha: 32,
      loraDropout: 0.05,
      taskType: 'CAUSAL_LM',
      baseModelNameOrPath: 'mistralai/Mistral-7B-v0.1',
      useDora: true,
      layerReplication: [
        [0, 16],
        [8, 24],
      ],
      loftqConfig: { loftqBits: 4, loftqIter: 1 },
      initLoraWeights: 'gaussian',
      rankPattern: { q_proj: 4 },
      alphaPattern: { q_proj: 0.5 },
      modulesToSave: ['lm_head'],
    });
    expect(text).toBe(`{
  "alpha_pattern": {
    "q_proj": 0.5
  },
  "auto_mapping": null,
  "base_model_name_or_path": "mistralai/Mistral-7B-v0.1",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": "gaussian",
  "layer_replication": [
    [
      0,
      16
    ],
    [
      8,
      24
    ]
  ],
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {
    "loftq_bits": 4,
    "loftq_iter": 1
  },
  "lora_alpha": 32,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": [
    "lm_head"
  ],
  "peft_type": "LORA",
  "r": 16,
  "rank_pattern": {
    "q_proj": 4
  },
  "revision": null,
  "target_modules": [
    "q_proj",
    "v_proj"
  ],
  "task_type": "CAUSAL_LM",
  "use_dora": true,
  "use_rslora": false
}`);
    expect(serializeLoraConfig(parseLoraConfigJson(text, { strict: true }))).toBe(text);
  });

  it('writes small dropout rates as Python does', () => {
    expect(serializeLoraConfig({ loraDropout: 1e-5 })).toContain('"lora_dropout": 1e-05,');
    expect(serializeLoraConfig({ loraDropout: 0.1 })).toContain('"lora_dropout": 0.1,');
  });

  it('writes inference_mode as true without changing the config', () => {
    const config = createLoraConfig({ inferenceMode: false });
    expect(serializeLoraConfig(config)).toContain('"inference_mode": true,');
    expect(config.inferenceMode).toBe(false);
  });

  it('keeps a regex target_modules as a string', () => {
    expect(serializeLoraConfig({ targetModules: 'all-linear' })).toContain('"target_modules": "all-linear",');
  });

  it('validates before writing', () => {
    expect(errorFrom(() => serializeLoraConfig({ r: 0 })).message).toBe('r: expected a positive integer, got 0');
  });
});
