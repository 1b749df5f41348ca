// `pnpm bench [--json FILE] [--filter TEXT]`: runs every package's benchmarks (files `*/bench/*.bench.ts`
// exporting `run…Bench(): Promise<BenchResult[]>`) in this one process and prints one table.
import { readdir, writeFile } from 'node:fs/promises';
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

const jsonFile = option('--json');
const filter = option('--filter');
const files = (await Promise.all(['packages', 'apps'].map((folder) => findBenchFiles(join(root, folder))))).flat().sort();
const rows: (BenchResult & { file: string })[] = [];
for (const file of files) {
  const name = relative(root, file);
  if (filter && !name.includes(filter)) continue;
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  for (const [exportName, run] of Object.entries(module)) {
    if (typeof run !== 'function' || !/^run.*Bench$/.test(exportName)) continue;
    console.error(`running ${name} ${exportName}…`);
    for (const result of (await run()) as BenchResult[]) rows.push({ ...result, file: name });
  }
}

const format = (value: number | undefined) =>
  value === undefined ? '' : Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toPrecision(3);
const table = [['benchmark', 'value', 'unit', 'baseline', 'ratio', 'note'], ...rows.map((row) => [row.name, format(row.value), row.unit, format(row.baseline), format(row.ratio), row.note ?? ''])];
const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
for (const row of table) console.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd());
if (jsonFile) await writeFile(jsonFile, `${JSON.stringify(rows, null, 2)}\n`);
