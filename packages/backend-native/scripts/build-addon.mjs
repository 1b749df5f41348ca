// Install step: compiles the N-API addon against the system OpenBLAS with node-gyp. It never fails the install:
// without a compiler, Python, the Node headers or OpenBLAS it says what is missing and exits 0, and the backend
// then reports itself unavailable (peft-ts falls back to wasm).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const notice = (message) => console.warn(`@peft-ts/backend-native: ${message}; the native backend is unavailable (install libopenblas-dev, a C++ compiler and python3, then rebuild: pnpm rebuild @peft-ts/backend-native)`);

/** node-gyp as the package manager provides it (npm and pnpm set npm_config_node_gyp), else npm's bundled copy. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not installed as a package: the candidates above remain
  }
  return candidates.find((candidate) => candidate && existsSync(candidate));
}

/** Headers installed with Node (distribution packages put them under <prefix>/include/node): no download needed. */
function findNodeDir() {
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function main() {
  if (process.env.PEFT_TS_SKIP_NATIVE_BUILD) return notice('PEFT_TS_SKIP_NATIVE_BUILD is set, build skipped');
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return notice('node-gyp was not found');
  const nodeDir = findNodeDir();
  const args = [nodeGyp, 'rebuild', '--loglevel=warn', ...(nodeDir ? [`--nodedir=${nodeDir}`] : [])];
  const build = spawnSync(process.execPath, args, { cwd: packageRoot, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
  if (build.status !== 0) {
    const output = `${build.stderr ?? ''}${build.error?.message ?? ''}`;
    process.stderr.write(output.split('\n').slice(-15).join('\n'));
    const reason = /cblas\.h|-lopenblas/.test(output)
      ? 'OpenBLAS was not found'
      : /find any Python|find Python/i.test(output)
        ? 'python3 was not found'
        : /No such file or directory: '[^']*'|(c\+\+|g\+\+|cc|make): (command )?not found/.test(output)
          ? 'no C++ compiler (or make) was found'
          : 'the addon failed to compile';
    return notice(reason);
  }
}

main();
