import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bitsAndBytesConfigToSnakeCase, createBitsAndBytesConfig } from './bits-and-bytes-config.js';
import { generateJsonSchemaFiles } from './json-schemas.js';
import { createLoraConfig, loraConfigToSnakeCase } from './lora-config.js';

const schemaDirectory = new URL('../../../docs/schemas/', import.meta.url);
const generated = generateJsonSchemaFiles();

interface ObjectSchema {
  properties: Record<string, { default?: unknown; description?: string }>;
  additionalProperties: boolean;
}

describe('docs/schemas', () => {
  it('generates the three file-format schemas', () => {
    expect(Object.keys(generated).sort()).toEqual([
      'bits-and-bytes-config.schema.json',
      'lora-config.schema.json',
      'training-config.schema.json',
    ]);
  });

  it.each(Object.keys(generated))('%s is up to date (regenerate with `pnpm --filter @peft-ts/config generate:schemas`)', (fileName) => {
    expect(readFileSync(new URL(fileName, schemaDirectory), 'utf8')).toBe(generated[fileName]);
  });

  it("states PEFT's defaults and describes every field of the LoRA config", () => {
    const schema = JSON.parse(generated['lora-config.schema.json']) as ObjectSchema;
    const defaults = loraConfigToSnakeCase(createLoraConfig()) as Record<string, unknown>;
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(defaults).sort());
    for (const [key, property] of Object.entries(schema.properties)) {
      expect(property.default, key).toEqual(defaults[key]);
      expect(property.description, key).toBeTruthy();
    }
    expect(schema.additionalProperties).toBe(false);
  });

  it('states the bitsandbytes defaults', () => {
    const schema = JSON.parse(generated['bits-and-bytes-config.schema.json']) as ObjectSchema;
    const defaults = bitsAndBytesConfigToSnakeCase(createBitsAndBytesConfig()) as Record<string, unknown>;
    expect(Object.fromEntries(Object.entries(schema.properties).map(([key, property]) => [key, property.default]))).toEqual(
      defaults,
    );
  });

  it('requires only model, data and output_dir in a training config', () => {
    const schema = JSON.parse(generated['training-config.schema.json']) as ObjectSchema & { required: string[] };
    expect(schema.required).toEqual(['model', 'data', 'output_dir']);
    for (const [key, property] of Object.entries(schema.properties)) expect(property.description, key).toBeTruthy();
  });
});
