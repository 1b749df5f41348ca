// The workspace's publishable packages: listing them, building them and packing them as `pnpm publish` would
// (publishConfig applied, workspace: ranges replaced by versions). Used by scripts/lint-packages.mjs, the
// release script and the packed-install test (tests/packaging).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const packageManager = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager;

/**
 * Runs the pinned pnpm (through npx, which also puts it on PATH for turbo) in the repository root; returns stdout.
 * `inherit` streams the output instead, for long steps.
 */
export function pnpm(args, { inherit = false } = {}) {
  const result = spawnSync('npx', ['--yes', packageManager, ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: inherit ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    maxBuffer: 64 * 2 ** 20,
  });
  if (result.status !== 0) {
    throw new Error(`pnpm ${args.join(' ')} failed (exit ${result.status ?? result.signal})${inherit ? '' : `:\n${result.stderr}${result.stdout}`}`);
  }
  return result.stdout ?? '';
}

/** Every non-private workspace package: { name, version, path, manifest }. */
export function publishablePackages() {
  const listed = JSON.parse(pnpm(['-r', 'ls', '--depth', '-1', '--json']));
  return listed
    .filter((entry) => !entry.private && entry.path !== root)
    .map((entry) => ({ ...entry, manifest: JSON.parse(readFileSync(join(entry.path, 'package.json'), 'utf8')) }));
}

/** The named packages plus the workspace packages they depend on at run time (`dependencies`), transitively. */
export function withWorkspaceDependencies(names, packages = publishablePackages()) {
  const byName = new Map(packages.map((entry) => [entry.name, entry]));
  const needed = new Set();
  const visit = (name) => {
    const entry = byName.get(name);
    if (!entry) throw new Error(`${name} is not a publishable workspace package (${[...byName.keys()].join(', ')})`);
    if (needed.has(name)) return;
    needed.add(name);
    for (const [dependency, range] of Object.entries(entry.manifest.dependencies ?? {})) {
      if (range.startsWith('workspace:')) visit(dependency);
    }
  };
  names.forEach(visit);
  return packages.filter((entry) => needed.has(entry.name));
}

/**
 * Builds the packages from a clean dist (turbo also builds what they depend on) and packs them into
 * `destination`. Returns pnpm's report per package: { name, version, filename, files: [{ path }] }.
 */
export function buildAndPack(packages, destination, { inherit = false } = {}) {
  for (const entry of packages) rmSync(join(entry.path, 'dist'), { recursive: true, force: true });
  const filters = packages.map((entry) => `--filter=${entry.name}`);
  pnpm(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only', ...filters], { inherit });
  const packed = JSON.parse(pnpm(['-r', ...filters, 'pack', '--pack-destination', destination, '--json']));
  return Array.isArray(packed) ? packed : [packed];
}
