// Regenerates docs/schemas/*.json from the zod schemas: `pnpm --filter @peft-ts/config generate:schemas`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { generateJsonSchemaFiles } from '../src/json-schemas.js';

const directory = new URL('../../../docs/schemas/', import.meta.url);
mkdirSync(directory, { recursive: true });
for (const [fileName, text] of Object.entries(generateJsonSchemaFiles())) {
  writeFileSync(new URL(fileName, directory), text);
  console.log(`wrote docs/schemas/${fileName}`);
}
