import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as config from '@peft-ts/config';
import * as core from '@peft-ts/core';
import * as nativeBackend from '@peft-ts/backend-native';
import * as backend from '@peft-ts/core/backend';
import * as safetensors from '@peft-ts/core/safetensors';
import * as dora from '@peft-ts/dora';
import * as lora from '@peft-ts/lora';
import * as modelCommon from '@peft-ts/model-common';
import * as llama from '@peft-ts/model-llama';
import * as mistral from '@peft-ts/model-mistral';
import * as quant from '@peft-ts/quant';
import * as replication from '@peft-ts/replication';

const packages = { config, core, backend, safetensors, nativeBackend, dora, lora, modelCommon, llama, mistral, quant, replication };

/** The trainer's own modules that declare an error class. */
async function trainerErrorModules(): Promise<Record<string, Record<string, unknown>>> {
  const root = fileURLToPath(new URL('.', import.meta.url));
  const files = (await readdir(root, { recursive: true })).filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'));
  const modules: Record<string, Record<string, unknown>> = {};
  for (const file of files) {
    if (/class \w+ extends \w*Error\b/.test(await readFile(join(root, file), 'utf8'))) modules[file] = await import(join(root, file));
  }
  return modules;
}

const errorClasses = (modules: Record<string, Record<string, unknown>>) =>
  Object.entries(modules).flatMap(([module, exports]) =>
    Object.entries(exports)
      .filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error)
      .map(([name, value]) => ({ name: `${module}: ${name}`, errorClass: value as new (...args: never[]) => Error })),
  );

describe('error classes', () => {
  it('every one exported by a package or declared by the trainer extends PeftError, and core re-exports that root', async () => {
    expect(core.PeftError).toBe(config.PeftError);
    const classes = [...errorClasses(packages), ...errorClasses(await trainerErrorModules())];
    // ConfigError, QuantError, UsageError and the trainer's are among them, so the walk did find the classes.
    expect(classes.map(({ name }) => name)).toEqual(
      expect.arrayContaining(['config: ConfigError', 'quant: QuantError', 'nativeBackend: NativeBackendError', 'session/run-config.ts: UsageError', 'training/training-error.ts: TrainingError']),
    );
    const outside = classes.filter(({ errorClass }) => errorClass !== core.PeftError && !(errorClass.prototype instanceof core.PeftError));
    expect(outside.map(({ name }) => name)).toEqual([]);
  });

  it('every one exported by a package carries a brand of its own, so catching works across installed copies', () => {
    // brandClass gives the class its own Symbol.hasInstance; without one it inherits its base's, which is plain instanceof.
    const unbranded = errorClasses(packages).filter(({ errorClass }) => !Object.hasOwn(errorClass, Symbol.hasInstance));
    expect(unbranded.map(({ name }) => name)).toEqual([]);
  });
});
