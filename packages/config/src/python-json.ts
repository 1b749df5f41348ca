import { brandClass } from './class-brand.js';

/**
 * Writes JSON exactly like Python's `json.dumps(value, indent=2, sort_keys=True)`, which is how PEFT and
 * transformers save their config files and checkpoint indexes; the one copy every package uses. Byte-compatible output needs three things JSON.stringify does not do:
 * Python's float repr, `ensure_ascii` escaping and the distinction between Python ints and floats.
 */

/** Marks a number that Python holds as a `float`, so that e.g. 0 is written `0.0` rather than `0`. */
export class PythonFloat {
  static {
    brandClass(this, '@peft-ts/config:PythonFloat');
  }

  constructor(readonly value: number) {}
}

export type PythonJsonValue =
  | null
  | boolean
  | number
  | string
  | PythonFloat
  | readonly PythonJsonValue[]
  | { readonly [key: string]: PythonJsonValue | undefined };

/** Orders strings by Unicode code point like Python's `sorted`, unlike JavaScript's UTF-16 code unit order. */
export function compareCodePoints(left: string, right: string): number {
  const leftPoints = Array.from(left, (character) => character.codePointAt(0) as number);
  const rightPoints = Array.from(right, (character) => character.codePointAt(0) as number);
  const length = Math.min(leftPoints.length, rightPoints.length);
  for (let index = 0; index < length; index += 1) {
    if (leftPoints[index] !== rightPoints[index]) return leftPoints[index] - rightPoints[index];
  }
  return leftPoints.length - rightPoints.length;
}

/**
 * Python's `repr(float)`: the shortest digits that round-trip (the same digits JavaScript picks), printed in
 * positional notation when the decimal exponent is in [-4, 16) and as `1e-05` style otherwise. Non-finite values
 * are refused unless `allowNan`, with which they are written as json.dumps does (`NaN`, `Infinity`, `-Infinity`,
 * which is not JSON): no config field may hold one, but bitsandbytes' quant state can.
 */
export function formatPythonFloat(value: number, options: { allowNan?: boolean } = {}): string {
  if (!Number.isFinite(value)) {
    if (!options.allowNan) throw new RangeError(`cannot write ${value} as a JSON number`);
    return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  }
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  const [mantissa, exponentText] = Math.abs(value).toExponential().split('e');
  const exponent = Number(exponentText);
  const digits = mantissa.replace('.', '');
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.slice(1);
    const exponentDigits = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${digits[0]}${fraction ? `.${fraction}` : ''}e${exponent < 0 ? '-' : '+'}${exponentDigits}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const integerPart = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  return `${sign}${integerPart}.${digits.slice(exponent + 1) || '0'}`;
}

const shortEscapes: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** Python's default `ensure_ascii=True`: everything outside printable ASCII becomes `\uXXXX` (per UTF-16 unit). */
function formatPythonString(text: string): string {
  let result = '"';
  for (let index = 0; index < text.length; index += 1) {
    const character = text[index];
    const code = text.charCodeAt(index);
    if (character in shortEscapes) result += shortEscapes[character];
    else if (code >= 0x20 && code <= 0x7e) result += character;
    else result += `\\u${code.toString(16).padStart(4, '0')}`;
  }
  return `${result}"`;
}

function formatNumber(value: number): string {
  // A JavaScript number that is integral stands for a Python int unless wrapped in PythonFloat.
  return Number.isSafeInteger(value) ? String(value) : formatPythonFloat(value);
}

function formatValue(value: PythonJsonValue, depth: number): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'string') return formatPythonString(value);
  if (value instanceof PythonFloat) return formatPythonFloat(value.value);
  const innerIndent = '  '.repeat(depth + 1);
  const closingIndent = '  '.repeat(depth);
  if (Array.isArray(value)) {
    const items = value as readonly PythonJsonValue[];
    if (items.length === 0) return '[]';
    const lines = items.map((item) => innerIndent + formatValue(item, depth + 1));
    return `[\n${lines.join(',\n')}\n${closingIndent}]`;
  }
  const record = value as { readonly [key: string]: PythonJsonValue | undefined };
  // Undefined members are skipped, as JSON.stringify does: a Python dict has no such thing.
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort(compareCodePoints);
  if (keys.length === 0) return '{}';
  const lines = keys.map(
    (key) => `${innerIndent}${formatPythonString(key)}: ${formatValue(record[key] as PythonJsonValue, depth + 1)}`,
  );
  return `{\n${lines.join(',\n')}\n${closingIndent}}`;
}

/** `json.dumps(value, indent=2, sort_keys=True)`, without a trailing newline. */
export function formatPythonJson(value: PythonJsonValue): string {
  return formatValue(value, 0);
}
