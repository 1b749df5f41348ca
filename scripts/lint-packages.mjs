// Lints what would be published: builds and packs every publishable workspace package, then runs publint on each
// tarball (so publishConfig is what gets checked) and checks that no workspace: range, test or fixture ships.
// Exits 1 on any error; publint's warnings count as errors (strict), its suggestions are printed only.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { buildAndPack, publishablePackages } from './packages.mjs';

/** Paths that are for this repository's tests only: test files, fixtures and test-only helper folders. */
const testOnlyPath = /(^|\/)(__fixtures__|testing)\/|\.(test|spec|bench)\.[cm]?[jt]s(\.map)?$/;

const destination = mkdtempSync(join(tmpdir(), 'peft-ts-lint-packages-'));
let errors = 0;
try {
  const packed = buildAndPack(publishablePackages(), destination);
  for (const tarball of packed) {
    const problems = [];
    const bytes = readFileSync(tarball.filename);
    const archive = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const { messages, pkg } = await publint({ pack: { tarball: archive }, strict: true });
    for (const message of messages) {
      const line = `${message.type}: ${formatMessage(message, pkg, { color: false })}`;
      if (message.type === 'error') problems.push(line);
      else console.log(`  ${tarball.name}: ${line}`);
    }
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
      for (const [name, range] of Object.entries(pkg[field] ?? {})) {
        if (range.startsWith('workspace:')) problems.push(`error: ${field}.${name} is still '${range}' in the tarball`);
      }
    }
    for (const { path } of tarball.files) {
      if (testOnlyPath.test(path)) problems.push(`error: ships ${path}, which only the repository's tests use`);
    }
    console.log(`${problems.length ? 'FAIL' : 'ok  '} ${tarball.name}@${tarball.version} (${tarball.files.length} files)`);
    for (const problem of problems) console.log(`  ${tarball.name}: ${problem}`);
    errors += problems.length;
  }
} finally {
  rmSync(destination, { recursive: true, force: true });
}
if (errors) {
  console.error(`lint:packages: ${errors} error(s)`);
  process.exit(1);
}
