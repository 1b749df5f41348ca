/**
 * Runs the toy training in a child process, for the kill -9 test: `node --import tsx toy-training-process.ts
 * <outputDir> <maxSteps> <saveSteps> <stepDelayMs> [resume]`. Prints `step <n>` after every optimizer step.
 */
import { initBackend } from '@peft-ts/core/backend';
import { setTimeout as sleep } from 'node:timers/promises';
import { runToyTraining } from './toy-training.js';

const [outputDir, maxSteps, saveSteps, stepDelay, resume] = process.argv.slice(2);
await initBackend('cpu');
const result = await runToyTraining({
  outputDir,
  settings: { maxSteps: Number(maxSteps), saveSteps: Number(saveSteps), evalSteps: 4 },
  resumeFrom: resume === 'resume' ? 'latest' : undefined,
  onStep: async ({ step }) => {
    process.stdout.write(`step ${step}\n`);
    await sleep(Number(stepDelay));
  },
});
process.stdout.write(`done ${result.summary.globalStep}\n`);
