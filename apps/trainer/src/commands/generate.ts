import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { PeftError } from '@peft-ts/core';
import { generate } from '@peft-ts/model-common';
import { positionLimit } from '@peft-ts/model-common/internal';
import { parseChatMessages } from '../data/chat-messages.js';
import type { ChatMessage } from '../data/text-tokenizer.js';
import { addModelOptions, openModel, type ModelOptions } from './model-options.js';
import { numberOption } from './numeric-option.js';

type GenerateOptions = ModelOptions & {
  prompt: string[];
  chat?: string;
  maxNewTokens: number;
  truncatePrompt?: boolean;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop: string[];
};

export function registerGenerateCommand(program: Command): void {
  addModelOptions(
    program
      .command('generate')
      .description('generate text from prompts (batched, left-padded) or a chat')
      .option('--prompt <text>', 'a prompt (repeatable: prompts are batched)', (value: string, list: string[]) => [...list, value], [])
      .option('--chat <file>', 'JSON file with chat messages [{role, content}, …], rendered with the chat template')
      .option('--max-new-tokens <count>', 'tokens to generate', numberOption('nonNegativeInteger'), 40)
      .option('--truncate-prompt', 'drop the start of a prompt that would not leave room for --max-new-tokens (default: an error)')
      .option('--do-sample', 'sample instead of greedy decoding')
      .option('--temperature <value>', 'sampling temperature', numberOption('positiveNumber'))
      .option('--top-k <count>', 'sample among the k most likely tokens', numberOption('nonNegativeInteger'))
      .option('--top-p <mass>', 'nucleus sampling mass', numberOption('probability'))
      .option('--repetition-penalty <factor>', 'penalise tokens already present', numberOption('positiveNumber'))
      .option('--seed <seed>', 'sampling seed', numberOption('nonNegativeInteger'))
      .option('--stop <text>', 'stop when this token is produced (repeatable)', (value: string, list: string[]) => [...list, value], []),
  ).action(async (options: GenerateOptions) => {
    const { model, tokenizer } = await openModel(options);
    const texts = options.prompt;
    let prompts: number[][];
    if (options.chat) {
      prompts = [tokenizer!.encodeChat(await readChatFile(options.chat), { addGenerationPrompt: true })];
    } else {
      if (texts.length === 0) throw new PeftError('give --prompt TEXT (repeatable) or --chat FILE');
      prompts = texts.map((text) => tokenizer!.encode(text));
    }
    prompts = fitPositions(prompts, options, positionLimit(model.decoderConfig), join(options.model, 'config.json'));
    const stopTokenIds = [
      ...(tokenizer!.eosTokenId === null ? [] : [tokenizer!.eosTokenId]),
      ...options.stop.map((text) => {
        const ids = tokenizer!.encode(text, { addSpecialTokens: false });
        if (ids.length !== 1) throw new PeftError(`--stop '${text}' is not a single token (${ids.length} tokens)`);
        return ids[0];
      }),
    ];
    const result = await generate(model, prompts, {
      maxNewTokens: options.maxNewTokens,
      doSample: options.doSample,
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      repetitionPenalty: options.repetitionPenalty,
      seed: options.seed,
      stopTokenIds,
      padTokenId: tokenizer!.padTokenId ?? tokenizer!.eosTokenId ?? 0,
    });
    result.tokens.forEach((tokens, index) => {
      const prompt = options.chat ? '' : texts[index];
      process.stdout.write(`${prompt}${tokenizer!.decode(tokens, { skipSpecialTokens: true })}\n`);
    });
  });
}

/** A `--chat` file: a JSON array of {role, content} messages, each checked (by index) before anything is rendered. */
async function readChatFile(path: string): Promise<ChatMessage[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new PeftError(`--chat ${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new PeftError(`--chat ${path}: invalid JSON (${(error as Error).message})`);
  }
  return parseChatMessages(value, path);
}

/**
 * Each prompt plus --max-new-tokens must fit max_position_embeddings: past it the model produces noise. Too long a
 * prompt is an error, or with --truncate-prompt loses its start (the end is what the continuation follows from).
 */
function fitPositions(prompts: number[][], options: GenerateOptions, positions: number, configFile: string): number[][] {
  const { maxNewTokens } = options;
  if (maxNewTokens >= positions) {
    throw new PeftError(`--max-new-tokens ${maxNewTokens}: leaves no room for a prompt within max_position_embeddings ${positions} (${configFile})`);
  }
  const room = positions - maxNewTokens;
  return prompts.map((prompt, index) => {
    if (prompt.length <= room) return prompt;
    const which = options.chat ? `--chat ${options.chat}` : `--prompt ${index + 1}`;
    const problem = `${which} is ${prompt.length} tokens; with --max-new-tokens ${maxNewTokens} that passes max_position_embeddings ${positions} (${configFile})`;
    if (!options.truncatePrompt) {
      throw new PeftError(`${problem}: shorten it, lower --max-new-tokens, or pass --truncate-prompt to drop its first ${prompt.length - room} tokens`);
    }
    process.stderr.write(`warning: ${problem}; --truncate-prompt drops its first ${prompt.length - room} tokens\n`);
    return prompt.slice(prompt.length - room);
  });
}
