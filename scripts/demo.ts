// `pnpm demo`: the embedded default end to end. Fine-tunes the small base model shipped in
// apps/trainer/demo with QLoRA + DoRA, and shows eval loss and generations before and after.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const demo = join(root, 'apps', 'trainer', 'demo');
const model = join(demo, 'base-model');
const validation = join(demo, 'data', 'validation.jsonl');
const output = join(root, 'runs', 'demo');
const prompts = ['The committee', 'In the morning'];

function peftTs(args: string[], capture = false): string {
  const result = spawnSync(process.execPath, [join(root, 'apps', 'trainer', 'bin', 'peft-ts.mjs'), ...args], {
    cwd: root,
    stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'],
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    console.error(`peft-ts ${args[0]} failed (exit ${result.status})`);
    process.exit(result.status ?? 1);
  }
  return result.stdout ?? '';
}

const evaluate = (adapter: string[]) =>
  JSON.parse(peftTs(['eval', '--model', model, ...adapter, '--quant', '4bit', '--data', validation, '--max-seq-length', '128', '--json'], true)) as {
    loss: number;
    perplexity: number;
  };
const sample = (adapter: string[]) =>
  peftTs(['generate', '--model', model, ...adapter, '--quant', '4bit', ...prompts.flatMap((prompt) => ['--prompt', prompt]), '--max-new-tokens', '24'], true).trim();

console.log('== before fine-tuning (4-bit base)');
const before = evaluate([]);
const samplesBefore = sample([]);
console.log(`eval loss ${before.loss.toFixed(4)} (perplexity ${before.perplexity.toFixed(1)})\n${samplesBefore}\n`);

console.log('== fine-tuning: QLoRA (NF4 + double quant) + DoRA, r=16, all linear layers');
peftTs(['train', '--config', join(demo, 'demo.yaml'), '--output-dir', output, '--overwrite-output-dir']);

console.log('\n== after fine-tuning');
const after = evaluate(['--adapter', output]);
const samplesAfter = sample(['--adapter', output]);
console.log(`eval loss ${after.loss.toFixed(4)} (perplexity ${after.perplexity.toFixed(1)})\n${samplesAfter}\n`);
console.log(`eval loss ${before.loss.toFixed(4)} → ${after.loss.toFixed(4)}; adapter, metrics and report in ${output}`);
