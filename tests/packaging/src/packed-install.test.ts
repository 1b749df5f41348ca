import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTensorFile } from '@peft-ts/core';
import { initBackend } from '@peft-ts/core/backend';
import { fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAndPack, withWorkspaceDependencies } from '../../../scripts/packages.mjs';

const TOLERANCE = 1e-4;
// The library as `npm install @peft-ts/lora @peft-ts/model-mistral` brings it, and the CLI package.
const installed = ['@peft-ts/lora', '@peft-ts/model-mistral', '@peft-ts/trainer'];

// What pnpm and npx export to the scripts they run (npm_config_local_prefix would make npm install into the
// workspace); the user's own npm settings (registry, certificates, cache) stay.
const runnerVariables = /^(npm_(package_|lifecycle_|command$|execpath$|node_execpath$|config_(local_prefix|user_agent)$)|pnpm_|INIT_CWD$)/i;
const environment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !runnerVariables.test(name)));

function run(command: string, args: string[], cwd: string): string {
  const env = { ...environment, npm_config_fund: 'false', npm_config_audit: 'false', npm_config_update_notifier: 'false' };
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 2 ** 20, env });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}:\n${result.stderr}`);
  return result.stdout;
}

describe('the packed packages, installed with npm outside the workspace', () => {
  let scratch: string;
  let project: string;
  const timings: Record<string, number> = {};
  const timed = <T>(step: string, action: () => T): T => {
    const start = performance.now();
    try {
      return action();
    } finally {
      timings[step] = Math.round(performance.now() - start);
    }
  };

  beforeAll(async () => {
    await initBackend('cpu'); // for reading the fixtures here
    scratch = mkdtempSync(join(tmpdir(), 'peft-ts-packed-'));
    project = join(scratch, 'project');
    mkdirSync(project);
    const tarballs = timed('build+pack', () => buildAndPack(withWorkspaceDependencies(installed), scratch));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'peft-ts-consumer', private: true, type: 'module' }));
    timed('npm install', () => run('npm', ['install', '--no-package-lock', ...tarballs.map((tarball) => tarball.filename)], project));
    copyFileSync(fileURLToPath(new URL('./consumer/lora-logits.mjs', import.meta.url)), join(project, 'lora-logits.mjs'));
  }, 600_000);

  afterAll(() => {
    console.info(`packed install timings (ms): ${JSON.stringify(timings)}`);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 120_000); // the scratch project holds a whole npm install

  it('installs released versions of the workspace dependencies, not workspace: ranges', () => {
    for (const name of ['@peft-ts/lora', '@peft-ts/trainer']) {
      const manifest = JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8'));
      const ranges = Object.values({ ...manifest.dependencies, ...manifest.peerDependencies }) as string[];
      expect(ranges.filter((range) => range.startsWith('workspace:'))).toEqual([]);
      expect(manifest.dependencies['@peft-ts/core']).toMatch(/^\d+\.\d+\.\d+/);
    }
    // A family package brings the shared decoder package with it.
    const mistral = JSON.parse(readFileSync(join(project, 'node_modules', '@peft-ts/model-mistral', 'package.json'), 'utf8'));
    expect(mistral.dependencies['@peft-ts/model-common']).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('loads the Mistral fixture with its LoRA adapter from plain Node: PEFT 0.10 logits, a backward pass, chained tensor methods', async () => {
    const output = JSON.parse(timed('library script', () => run(process.execPath, ['lora-logits.mjs', fixturePath()], project)));
    const expected = (await readTensorFile(fixturePath('mistral', 'lora', 'outputs.safetensors'))).get('logits')!;
    expect(output.shape).toEqual(expected.shape);
    expect(maxAbsDifference(output.logits, expected)).toBeLessThan(TOLERANCE);
    expect(output.gradientCount).toBeGreaterThan(0);
    expect(output.gradientsFinite).toBe(true);
    expect(output.gradientsNonZero).toBe(output.gradientCount);
    expect(output.chainedMax).toBe(5);
  });

  it('resolves the /internal entries of the built packages, which keep the helpers out of the main entries', () => {
    const script = `
      const entries = {};
      for (const name of ['@peft-ts/quant', '@peft-ts/model-common', '@peft-ts/model-mistral']) {
        entries[name] = Object.keys(await import(name));
        entries[name + '/internal'] = Object.keys(await import(name + '/internal'));
      }
      console.log(JSON.stringify(entries));`;
    const entries = JSON.parse(run(process.execPath, ['--input-type=module', '--eval', script], project)) as Record<string, string[]>;
    expect(entries['@peft-ts/quant']).toEqual(expect.arrayContaining(['Linear4bit', 'prepareModelForKbitTraining']));
    expect(entries['@peft-ts/quant']).not.toContain('roundHalfToEven');
    expect(entries['@peft-ts/quant/internal']).toEqual(expect.arrayContaining(['roundHalfToEven', 'torchLinspaceFloat32']));
    expect(entries['@peft-ts/model-common/internal']).toContain('FLOAT32_MIN');
    expect([...entries['@peft-ts/model-common'], ...entries['@peft-ts/model-mistral']]).not.toContain('FLOAT32_MIN');
    expect(entries['@peft-ts/model-mistral/internal']).toContain('smallBenchmarkConfig');
  });

  it('runs the peft-ts bin of @peft-ts/trainer (built JavaScript, no tsx)', async () => {
    const out = join(scratch, 'logits.safetensors');
    const bin = join(project, 'node_modules', '.bin', 'peft-ts');
    const args = ['logits', '--backend', 'cpu', '--model', fixturePath('mistral', 'base_model'), '--adapter', fixturePath('mistral', 'lora', 'adapter')];
    timed('peft-ts logits', () => run(bin, [...args, '--input', fixturePath('mistral', 'inputs.safetensors'), '--out', out], project));
    const expected = (await readTensorFile(fixturePath('mistral', 'lora', 'outputs.safetensors'))).get('logits')!;
    expect(maxAbsDifference((await readTensorFile(out)).get('logits')!, expected)).toBeLessThan(TOLERANCE);
    const manifest = JSON.parse(readFileSync(join(project, 'node_modules', '@peft-ts', 'trainer', 'package.json'), 'utf8'));
    expect([manifest.bin, 'tsx' in manifest.dependencies]).toEqual([{ 'peft-ts': './dist/bin.js' }, false]);
  });
});
