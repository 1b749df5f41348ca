import * as tf from '@tensorflow/tfjs-core';
import { PeftError, SeededRandom } from '@peft-ts/core';
import { brandClass, checkRowAdapters, nextSeed } from '@peft-ts/core/internal';
import type { DecoderForCausalLM } from './causal-lm.js';
import { positionLimit } from './decoder-config.js';
import { KeyValueCache } from './key-value-cache.js';
import { selectNextToken, type TokenSelectionSettings } from './next-token-selection.js';

export type GenerationOptions = Partial<TokenSelectionSettings> & {
  readonly maxNewTokens: number;
  /** Tokens that end a row (kept in its output). Default: the config's eos_token_id. */
  readonly stopTokenIds?: readonly number[];
  /** Fills left padding and finished rows. Default: pad_token_id, else the first stop token, else 0. */
  readonly padTokenId?: number;
  /** Sampling seed. Default: drawn from core's seed stream, so `manualSeed()` makes runs repeatable. */
  readonly seed?: number;
  /** Decode incrementally with a KV cache (default) or re-run the whole sequence every step. */
  readonly useCache?: boolean;
  /** One adapter name per prompt, `__base__` for none (PEFT's `adapter_names`); the model must be in eval mode. */
  readonly adapterNames?: readonly string[];
};

/** Generation settings or prompts that cannot be used with this model (all problems in one message). */
export class GenerationError extends PeftError {
  static {
    brandClass(this, '@peft-ts/model-common:GenerationError');
  }
}

export type GenerationResult = {
  /** New tokens per prompt, stop token included when one was produced. */
  readonly tokens: number[][];
  readonly finishReasons: ('stop' | 'length')[];
};

/**
 * Continues each prompt (token ids, any lengths) as transformers' `generate` does: prompts are left-padded into one
 * batch, positions follow the attention mask (`cumsum − 1`), and decoding is greedy unless `doSample`. Defaults
 * follow transformers' GenerationConfig (temperature 1, top-k 50, top-p 1, no repetition penalty). The repetition
 * penalty looks at each row's real tokens, not its padding.
 */
export async function generate(
  model: DecoderForCausalLM,
  prompts: readonly (readonly number[])[],
  options: GenerationOptions,
): Promise<GenerationResult> {
  const settings = validate(model, prompts, options);
  // Before the switch to eval mode below: PEFT's generate refuses adapter names on a model in training mode.
  if (options.adapterNames) checkRowAdapters(model, options.adapterNames, prompts.length);
  const { maxNewTokens, stopTokens, padToken } = settings;
  const batch = prompts.length;
  const promptLength = Math.max(...prompts.map((prompt) => prompt.length));
  // Per row: the token fed at every step (padding included) and the mask over them.
  const sequences = prompts.map((prompt) => [...Array<number>(promptLength - prompt.length).fill(padToken), ...prompt]);
  const masks = prompts.map((prompt) => [...Array<number>(promptLength - prompt.length).fill(0), ...Array<number>(prompt.length).fill(1)]);
  const histories = prompts.map((prompt) => [...prompt]);
  const tokens: number[][] = prompts.map(() => []);
  const finishReasons: ('stop' | 'length')[] = prompts.map(() => 'length');
  const finished = prompts.map(() => false);
  const random = new SeededRandom(options.seed ?? nextSeed());
  const cache = settings.useCache ? new KeyValueCache(model.decoderConfig.sliding_window) : undefined;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let step = 0; step < maxNewTokens && !finished.every(Boolean); step++) {
      const total = sequences[0].length;
      const fed = cache && step > 0 ? 1 : total;
      const scores = await lastLogits(model, { sequences, masks, start: total - fed, length: fed, cache, adapterNames: options.adapterNames });
      const vocabulary = scores.length / batch;
      for (let row = 0; row < batch; row++) {
        let next = padToken;
        if (!finished[row]) {
          next = selectNextToken(scores.subarray(row * vocabulary, (row + 1) * vocabulary), histories[row], settings, random);
          tokens[row].push(next);
          histories[row].push(next);
          if (stopTokens.has(next)) {
            finished[row] = true;
            finishReasons[row] = 'stop';
          }
        }
        sequences[row].push(next);
        masks[row].push(1);
      }
    }
  } finally {
    cache?.dispose();
    model.train(wasTraining);
  }
  return { tokens, finishReasons };
}

/** Runs positions `start … start+length−1` and returns the last position's logits, [batch × vocab]. */
async function lastLogits(
  model: DecoderForCausalLM,
  step: {
    sequences: number[][];
    masks: number[][];
    start: number;
    length: number;
    cache: KeyValueCache | undefined;
    adapterNames: readonly string[] | undefined;
  },
): Promise<Float32Array> {
  const { sequences, masks, start, length, cache, adapterNames } = step;
  const batch = sequences.length;
  const total = start + length;
  const ids = new Int32Array(batch * length);
  const positions = new Int32Array(batch * length);
  const mask = new Int32Array(batch * total);
  for (let row = 0; row < batch; row++) {
    let seen = 0;
    for (let column = 0; column < total; column++) {
      const keep = masks[row][column];
      mask[row * total + column] = keep;
      seen += keep;
      if (column < start) continue;
      const at = row * length + column - start;
      ids[at] = sequences[row][column];
      // transformers: position = cumsum(mask) − 1, and 1 where masked.
      positions[at] = keep ? seen - 1 : 1;
    }
  }
  const last = tf.tidy(() => {
    const { logits } = model.forward({
      inputIds: tf.tensor2d(ids, [batch, length], 'int32'),
      attentionMask: tf.tensor2d(mask, [batch, total], 'int32'),
      positionIds: tf.tensor2d(positions, [batch, length], 'int32'),
      cache,
      adapterNames,
    });
    return tf.reshape(tf.slice(logits, [0, length - 1, 0], [batch, 1, -1]), [batch, -1]);
  });
  try {
    return (await last.data()) as Float32Array;
  } finally {
    last.dispose();
  }
}

type ValidatedSettings = TokenSelectionSettings & {
  maxNewTokens: number;
  stopTokens: Set<number>;
  padToken: number;
  useCache: boolean;
};

function validate(model: DecoderForCausalLM, prompts: readonly (readonly number[])[], options: GenerationOptions): ValidatedSettings {
  const vocabulary = model.decoderConfig.vocab_size;
  const problems: string[] = [];
  const check = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem);
  };
  check(prompts.length > 0, 'prompts: expected at least one prompt');
  prompts.forEach((prompt, row) => {
    check(prompt.length > 0, `prompts[${row}]: expected at least one token`);
    const bad = prompt.find((token) => !Number.isInteger(token) || token < 0 || token >= vocabulary);
    check(bad === undefined, `prompts[${row}]: token ${bad} is not an id in [0, ${vocabulary})`);
  });
  const { maxNewTokens, temperature = 1, topK = 50, topP = 1, repetitionPenalty = 1 } = options;
  check(Number.isInteger(maxNewTokens) && maxNewTokens >= 0, `maxNewTokens: expected a non-negative integer, got ${maxNewTokens}`);
  // Positions past max_position_embeddings were never trained; the rotary angles still compute, so the output would
  // quietly degrade into noise rather than fail.
  const positions = positionLimit(model.decoderConfig);
  prompts.forEach((prompt, row) => {
    check(
      prompt.length + maxNewTokens <= positions,
      `prompts[${row}]: ${prompt.length} tokens + maxNewTokens ${maxNewTokens} = ${prompt.length + maxNewTokens} positions, past max_position_embeddings ${positions}`,
    );
  });
  check(temperature > 0, `temperature: expected a positive number, got ${temperature}`);
  check(Number.isInteger(topK) && topK >= 0, `topK: expected a non-negative integer, got ${topK}`);
  check(topP > 0 && topP <= 1, `topP: expected a number in (0, 1], got ${topP}`);
  check(repetitionPenalty > 0, `repetitionPenalty: expected a positive number, got ${repetitionPenalty}`);
  const eos = model.decoderConfig.eos_token_id;
  const stopTokenIds = options.stopTokenIds ?? (eos === null ? [] : Array.isArray(eos) ? eos : [eos]);
  const padToken = options.padTokenId ?? model.decoderConfig.pad_token_id ?? stopTokenIds[0] ?? 0;
  check(Number.isInteger(padToken) && padToken >= 0 && padToken < vocabulary, `padTokenId: ${padToken} is not an id in [0, ${vocabulary})`);
  if (problems.length) throw new GenerationError(`generate: ${problems.join('; ')}`);
  return {
    maxNewTokens,
    doSample: options.doSample ?? false,
    temperature,
    topK,
    topP,
    repetitionPenalty,
    stopTokens: new Set(stopTokenIds),
    padToken,
    useCache: options.useCache ?? true,
  };
}
