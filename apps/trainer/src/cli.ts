import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerEvalCommand } from './commands/evaluate.js';
import { registerGenerateCommand } from './commands/generate.js';
import { registerLogitsCommand } from './commands/logits.js';
import { registerMergeCommand } from './commands/merge.js';
import { registerPlanCommand } from './commands/plan.js';
import { registerTrainCommand } from './commands/train.js';

/** The trainer package's version, read from its package.json so that `--version` never drifts from a release. */
export const trainerVersion: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;

export function createProgram(): Command {
  const program = new Command()
    .name('peft-ts')
    .description('Parameter-efficient fine-tuning (LoRA, DoRA, QLoRA, layer replication) of Hugging Face models on TensorFlow.js')
    .version(trainerVersion, '-V, --version', 'print the peft-ts version')
    .showSuggestionAfterError(true)
    .exitOverride();
  registerTrainCommand(program);
  registerEvalCommand(program);
  registerGenerateCommand(program);
  registerMergeCommand(program);
  registerPlanCommand(program);
  registerLogitsCommand(program);
  return program;
}

/** Runs the CLI; any failure is one line on stderr (the stack only with PEFT_TS_DEBUG=1). */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    if (process.env.PEFT_TS_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}
