/** The JSON values `pythonJsonStringify` can write: enough for a checkpoint index. */
export type PythonJsonValue = string | number | { readonly [key: string]: PythonJsonValue };

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

/** A string literal as Python's `json.dumps` writes it by default (`ensure_ascii=True`): all non-ASCII escaped. */
function quote(text: string): string {
  let output = '"';
  for (let index = 0; index < text.length; index++) {
    const character = text[index];
    const code = text.charCodeAt(index);
    if (SHORT_ESCAPES[character] !== undefined) output += SHORT_ESCAPES[character];
    else if (code < 0x20 || code > 0x7e) output += `\\u${code.toString(16).padStart(4, '0')}`;
    else output += character;
  }
  return `${output}"`;
}

function write(value: PythonJsonValue, indent: number, depth: number): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number') {
    // Only integers print identically in both languages; floats would differ (Python writes 1e+16, JS 10000000000000000).
    if (!Number.isSafeInteger(value)) throw new TypeError(`pythonJsonStringify only writes integers, got ${value}`);
    return String(value);
  }
  // sort_keys compares code points, which is the order of the keys' UTF-8 bytes.
  const keys = Object.keys(value).sort((left, right) => Buffer.compare(Buffer.from(left), Buffer.from(right)));
  if (keys.length === 0) return '{}';
  const inner = ' '.repeat(indent * (depth + 1));
  const members = keys.map((key) => `${inner}${quote(key)}: ${write(value[key], indent, depth + 1)}`);
  return `{\n${members.join(',\n')}\n${' '.repeat(indent * depth)}}`;
}

/** Reproduces Python's `json.dumps(value, indent=indent, sort_keys=True)`, which transformers uses for indexes. */
export function pythonJsonStringify(value: PythonJsonValue, indent: number): string {
  return write(value, indent, 0);
}
