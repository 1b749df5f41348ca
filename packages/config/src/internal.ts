// Helpers the other peft-ts packages, the trainer, benchmarks and tests share but users should not rely on:
// `@peft-ts/config/internal` may change in any release. The public API is ./index.ts.
export { brandClass } from './class-brand.js';
export { formatIssuePath } from './config-error.js';
export {
  type CamelCaseKeys,
  camelCaseKeys,
  snakeCaseKeys,
  type SnakeToCamelCase,
  snakeToCamelCase,
} from './case-conversion.js';
export type { JsonValue } from './field-schemas.js';
export { parseJsonText } from './json-text.js';
export {
  compareCodePoints,
  formatPythonFloat,
  formatPythonJson,
  PythonFloat,
  type PythonJsonValue,
} from './python-json.js';
