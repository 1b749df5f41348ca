// `pnpm bench [--json FILE] [--filter TEXT]`: runs every package's benchmarks (files `*/bench/*.bench.ts`
// exporting `run…Bench(): Promise<BenchResult[]>`) and prints one table. Each file runs in its own process, so
// one benchmark's heap and caches never skew another's figures (each compares against baselines of its own).
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type BenchResult = { name: string; value: number; unit: string; baseline?: number; ratio?: number; note?: string };

const root = fileURLToPath(new URL('..', import.meta.url));

async function findBenchFiles(directory: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...(await findBenchFiles(path)));
    else if (entry.name.endsWith('.bench.ts') && path.includes(`${join('bench', entry.name)}`)) found.push(path);
  }
  return found;
}

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
}

async function runFile(file: string): Promise<BenchResult[]> {
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const results: BenchResult[] = [];
  for (const [exportName, run] of Object.entries(module)) {
    if (typeof run !== 'function' || !/^run.*Bench$/.test(exportName)) continue;
    console.error(`running ${relative(root, file)} ${exportName}…`);
    results.push(...((await run()) as BenchResult[]));
  }
  return results;
}

const child = option('--child');
if (child) {
  await writeFile(option('--out')!, JSON.stringify(await runFile(child)));
  process.exit(0);
}

const jsonFile = option('--json');
const filter = option('--filter');
const files = (await Promise.all(['packages', 'apps'].map((folder) => findBenchFiles(join(root, folder))))).flat().sort();
const rows: (BenchResult & { file: string })[] = [];
const scratch = await mkdtemp(join(tmpdir(), 'peft-ts-bench-'));
for (const file of files) {
  const name = relative(root, file);
  if (filter && !name.includes(filter)) continue;
  const out = join(scratch, 'results.json');
  const run = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', file, '--out', out], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (run.status !== 0) {
    console.error(`${name}: failed (exit ${run.status})`);
    continue;
  }
  for (const result of JSON.parse(await readFile(out, 'utf8')) as BenchResult[]) rows.push({ ...result, file: name });
}
await rm(scratch, { recursive: true, force: true });

const format = (value: number | undefined) =>
  value === undefined ? '' : Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toPrecision(3);
const table = [['benchmark', 'value', 'unit', 'baseline', 'ratio', 'note'], ...rows.map((row) => [row.name, format(row.value), row.unit, format(row.baseline), format(row.ratio), row.note ?? ''])];
const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
for (const row of table) console.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd());
if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(rows, null, 2)}\n`);
