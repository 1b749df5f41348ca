import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { PeftError } from '../errors.js';
import { fixturePath } from './index.js';

const configured = process.env.PEFT_TS_FIXTURES;
afterEach(() => {
  process.env.PEFT_TS_FIXTURES = configured;
});

it('resolves files under the folder PEFT_TS_FIXTURES names', () => {
  expect(existsSync(fixturePath('mistral', 'base_model', 'config.json'))).toBe(true);
  process.env.PEFT_TS_FIXTURES = '/elsewhere/fixtures';
  expect(fixturePath('mistral', 'inputs.safetensors')).toBe(join('/elsewhere/fixtures', 'mistral', 'inputs.safetensors'));
});

it('names the variable when it is not set', () => {
  delete process.env.PEFT_TS_FIXTURES;
  expect(() => fixturePath('mistral')).toThrow(PeftError);
  expect(() => fixturePath('mistral')).toThrow(/PEFT_TS_FIXTURES is not set/);
});
