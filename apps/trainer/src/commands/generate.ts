import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { PeftError } from '@peft-ts/core';
import { generate } from '@peft-ts/model-mistral';
import { addModelOptions, openModel, type ModelOptions } from './model-options.js';

type GenerateOptions = ModelOptions & {
  prompt: string[];
  chat?: string;
  maxNewTokens: number;
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
      .option('--max-new-tokens <count>', 'tokens to generate', Number, 40)
      .option('--do-sample', 'sample instead of greedy decoding')
      .option('--temperature <value>', 'sampling temperature', Number)
      .option('--top-k <count>', 'sample among the k most likely tokens', Number)
      .option('--top-p <mass>', 'nucleus sampling mass', Number)
      .option('--repetition-penalty <factor>', 'penalise tokens already present', Number)
      .option('--seed <seed>', 'sampling seed', Number)
      .option('--stop <text>', 'stop when this token is produced (repeatable)', (value: string, list: string[]) => [...list, value], []),
  ).action(async (options: GenerateOptions) => {
    const { model, tokenizer } = await openModel(options);
    const texts = options.prompt;
    let prompts: number[][];
    if (options.chat) {
      const messages = JSON.parse(await readFile(options.chat, 'utf8'));
      prompts = [tokenizer!.encodeChat(messages, { addGenerationPrompt: true })];
    } else {
      if (texts.length === 0) throw new PeftError('give --prompt TEXT (repeatable) or --chat FILE');
      prompts = texts.map((text) => tokenizer!.encode(text));
    }
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
