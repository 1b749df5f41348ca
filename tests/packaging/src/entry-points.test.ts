import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { publishablePackages } from '../../../scripts/packages.mjs';

type Manifest = { exports?: Record<string, string>; publishConfig: { exports: Record<string, string | { types: string; import: string }> } };
type Entry = { name: string; path: string; manifest: Manifest };

// The libraries; the trainer package has a bin and no exports.
const packages = (publishablePackages() as Entry[]).filter((entry) => entry.manifest.exports !== undefined);
const byName = new Map(packages.map((entry) => [entry.name, entry]));

/** A package's entry as its `exports` maps it in the workspace (the TypeScript source). */
async function entryPoint(name: string, subpath: '.' | './internal'): Promise<Record<string, unknown>> {
  const entry = byName.get(name);
  const file = entry?.manifest.exports?.[subpath];
  if (!entry || !file) throw new Error(`${name}: no '${subpath}' in the exports of its package.json`);
  return import(pathToFileURL(join(entry.path, file)).href);
}

// Helpers that only the packages, the trainer and the tests share: each must stay out of its package's main entry.
const knownInternals: Record<string, string[]> = {
  '@peft-ts/config': ['formatPythonJson', 'camelCaseKeys'],
  '@peft-ts/core': ['matMul', 'narrowToHalfBits', 'runFusedKernel', 'writeTextFileAtomically'],
  '@peft-ts/quant': ['roundHalfToEven', 'torchLinspaceFloat32', 'float32Fma', 'NF4_CODE'],
  '@peft-ts/lora': ['toPeftKey', 'loraScaling'],
  '@peft-ts/model-common': ['FLOAT32_MIN', 'maskedSoftmax', 'headDimensionOf'],
};

describe('package entry points', () => {
  it('publish every source entry of exports as its built JavaScript and declarations', () => {
    const unpublished = packages.flatMap(({ name, manifest }) =>
      Object.entries(manifest.exports!)
        .filter(([subpath]) => subpath !== './package.json')
        .filter(([subpath, source]) => {
          const built = source.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '');
          const published = manifest.publishConfig.exports[subpath];
          return JSON.stringify(published) !== JSON.stringify({ types: `${built}.d.ts`, import: `${built}.js` });
        })
        .map(([subpath]) => `${name}: ${subpath}`),
    );
    expect(unpublished).toEqual([]);
  });

  it('keep the internal helpers out of the main entry and export them from /internal', async () => {
    for (const [name, internals] of Object.entries(knownInternals)) {
      const [main, internal] = await Promise.all([entryPoint(name, '.'), entryPoint(name, './internal')]);
      expect({ name, inMain: internals.filter((symbol) => symbol in main) }).toEqual({ name, inMain: [] });
      expect({ name, missing: internals.filter((symbol) => !(symbol in internal)) }).toEqual({ name, missing: [] });
    }
    // model-mistral re-exports model-common's main entry, and with it none of model-common's internals.
    const mistral = await entryPoint('@peft-ts/model-mistral', '.');
    expect(knownInternals['@peft-ts/model-common']!.filter((symbol) => symbol in mistral)).toEqual([]);
    expect(['generate', 'loadMistral', 'KeyValueCache'].filter((symbol) => !(symbol in mistral))).toEqual([]);
  });

  it('export nothing from /internal that the main entry exports too', async () => {
    const overlaps: string[] = [];
    for (const { name, manifest } of packages) {
      if (!manifest.exports!['./internal']) continue;
      const [main, internal] = await Promise.all([entryPoint(name, '.'), entryPoint(name, './internal')]);
      expect(Object.keys(main).length, `${name} main entry`).toBeGreaterThan(0);
      overlaps.push(...Object.keys(internal).filter((symbol) => symbol in main).map((symbol) => `${name}: ${symbol}`));
    }
    expect(overlaps).toEqual([]);
  });
});
