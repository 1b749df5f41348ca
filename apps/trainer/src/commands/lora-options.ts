import { InvalidArgumentError, Option, type Command } from 'commander';
import type { z } from 'zod';
import { loraConfigFileSchema } from '@peft-ts/config';
import { parseDecimal } from './numeric-option.js';

/** What one field of the LoRA schema accepts, found by walking its zod definition. */
type Accepts = { boolean: boolean; number: boolean; string: boolean; choices: (string | number)[]; list: Accepts | null };

type ZodDefinition = {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  element?: z.ZodType;
  entries?: Record<string, string>;
  values?: (string | number)[];
};

const nothing = (): Accepts => ({ boolean: false, number: false, string: false, choices: [], list: null });

/** null when part of the field is not a scalar or a list of scalars (a mapping, a list of pairs): YAML only. */
function accepts(schema: z.ZodType): Accepts | null {
  const definition = schema.def as unknown as ZodDefinition;
  const result = nothing();
  switch (definition.type) {
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'optional':
      return accepts(definition.innerType!);
    case 'pipe':
      return accepts(definition.in!);
    case 'boolean':
    case 'number':
    case 'string':
      return { ...result, [definition.type]: true };
    case 'enum':
      return { ...result, choices: Object.values(definition.entries!) };
    case 'literal':
      return { ...result, choices: [...definition.values!] };
    case 'array': {
      const element = accepts(definition.element!);
      return element && !element.list ? { ...result, list: element } : null;
    }
    case 'union': {
      const branches = definition.options!.map(accepts);
      if (branches.some((branch) => branch === null)) return null;
      return branches.reduce<Accepts>(
        (all, branch) => ({
          boolean: all.boolean || branch!.boolean,
          number: all.number || branch!.number,
          string: all.string || branch!.string,
          choices: [...all.choices, ...branch!.choices],
          list: all.list ?? branch!.list,
        }),
        result,
      );
    }
    default:
      return null;
  }
}

const isSwitch = (field: Accepts) => field.boolean && !field.number && !field.string && field.choices.length === 0 && !field.list;
const isChoice = (field: Accepts) => field.choices.length > 0 && !field.boolean && !field.number && !field.string && !field.list;

/** A scalar as the field takes it: true/false and numbers where the field accepts them, else the text itself. */
function scalarValue(text: string, field: Accepts): unknown {
  if (field.boolean && (text === 'true' || text === 'false')) return text === 'true';
  const number = parseDecimal(text);
  if (field.number && !Number.isNaN(number)) return number;
  if (field.string || field.choices.some((choice) => String(choice) === text)) return text;
  if (field.number) throw new InvalidArgumentError('expected a number');
  throw new InvalidArgumentError(`expected ${[field.boolean ? 'true, false' : '', ...field.choices.map(String)].filter(Boolean).join(', ')}`);
}

/**
 * The value of a field that takes a list: comma-separated items. Where the field also takes one scalar, a value
 * without a comma is that scalar, except that a plain module name is a list of one: `q_proj` means the module, as a
 * list does, while a string is a pattern (a regex, or `all-linear`) as in PEFT.
 */
function fieldValue(text: string, field: Accepts): unknown {
  if (!field.list) return scalarValue(text, field);
  const scalar = field.boolean || field.number || field.string || field.choices.length > 0;
  const plainName = field.string && /^[\w.]+$/.test(text);
  if (scalar && !text.includes(',') && !plainName) return scalarValue(text, field);
  return text.split(',').map((item) => scalarValue(item.trim(), field.list!));
}

/** Keys the trainer writes itself, so an option for them would do nothing. */
const keysSetByTrainer = new Set(['peft_type', 'inference_mode', 'base_model_name_or_path']);

/** TRL's spelling: `--lora-` before keys that do not already name the method (`--lora-r`, but `--use-dora`). */
export function loraOptionFlag(key: string): string {
  return `--${/lora|dora/.test(key) ? '' : 'lora-'}${key.replaceAll('_', '-')}`;
}

type LoraOption = { key: string; flag: string; attribute: string; field: Accepts; description: string };

/** One option per LoRA key that is a scalar or a list of scalars, built from the schema so that none is forgotten. */
const loraOptions: readonly LoraOption[] = Object.entries(loraConfigFileSchema.shape).flatMap(([key, schema]) => {
  const field = accepts(schema as z.ZodType);
  if (!field || keysSetByTrainer.has(key)) return [];
  const flag = loraOptionFlag(key);
  const attribute = new Option(flag).attributeName();
  return [{ key, flag, attribute, field, description: `lora.${key}: ${(schema as z.ZodType).description ?? ''}` }];
});

function placeholder(field: Accepts): string {
  if (field.list) return field.string || field.list.string ? '<names,…>' : '<values,…>';
  if (field.choices.length > 0 && !field.string) return '<choice>';
  return field.number ? '<number>' : '<value>';
}

export function addLoraOptions(command: Command): Command {
  for (const { flag, field, description, key } of loraOptions) {
    if (isSwitch(field)) {
      command.addOption(new Option(flag, description));
      command.addOption(new Option(flag.replace('--', '--no-'), `lora.${key}: false`));
      continue;
    }
    const option = new Option(`${flag} ${placeholder(field)}`, description).argParser((text) => fieldValue(text, field));
    command.addOption(isChoice(field) ? option.choices(field.choices.map(String)) : option);
  }
  return command;
}

/** The LoRA keys given on the command line, in the file's snake_case. */
export function loraOverrides(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(loraOptions.filter(({ attribute }) => options[attribute] !== undefined).map(({ key, attribute }) => [key, options[attribute]]));
}
