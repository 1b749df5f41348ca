import { SeededRandom } from '../random.js';
import type { SafetensorsErrorCode } from '../safetensors/safetensors-error.js';
import { serializeSafetensors } from '../safetensors/serialize-safetensors.js';

// A corpus of malformed safetensors files, each with the error codes it may be rejected with: the safetensors
// reader's own test checks the codes, loader tests feed the same files through their public entry points.

export interface MalformedCase {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** The codes this file may be rejected with; 'valid' when it must parse (byte flips may also keep it valid). */
  readonly expected: readonly (SafetensorsErrorCode | 'valid')[];
}

/** Every code that header validation can produce. */
export const VALIDATION_CODES: readonly SafetensorsErrorCode[] = [
  'TRUNCATED',
  'HEADER_TOO_LARGE',
  'INVALID_HEADER',
  'INVALID_JSON',
  'INVALID_METADATA',
  'UNKNOWN_DTYPE',
  'INVALID_SHAPE',
  'INVALID_OFFSETS',
  'SIZE_MISMATCH',
  'OUT_OF_BOUNDS',
  'TRAILING_DATA',
];

const VALID = serializeSafetensors(
  {
    weight: { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
    half: { dtype: 'F16', shape: [4], data: Float32Array.of(0.5, -1, 2, 65504) },
    ids: { dtype: 'I64', shape: [2], data: BigInt64Array.of(7n, -9n) },
    mask: { dtype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
    scalar: { dtype: 'F64', shape: [], data: Float64Array.of(Math.E) },
  },
  { format: 'pt' },
);
const VALID_HEADER_LENGTH = Number(new DataView(VALID.buffer).getBigUint64(0, true));
export const VALID_PADDING = VALID_HEADER_LENGTH - Buffer.from(VALID.subarray(8, 8 + VALID_HEADER_LENGTH)).toString().trimEnd().length;

function withLength(length: bigint, body: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(8 + body.byteLength);
  new DataView(bytes.buffer).setBigUint64(0, length, true);
  bytes.set(body, 8);
  return bytes;
}

/** A file whose header is `json` (space-padded to 8 bytes), followed by `data`. */
export function fileWithHeader(json: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const text = Buffer.from(json, 'utf8');
  const padded = Buffer.alloc(Math.ceil(text.byteLength / 8) * 8, 0x20);
  text.copy(padded);
  return withLength(BigInt(padded.byteLength), Buffer.concat([padded, data]));
}

/** A one-tensor file: the entry's JSON text is spliced in verbatim so that any malformation can be expressed. */
function fileWithEntry(entry: string, dataBytes = 8): Uint8Array {
  return fileWithHeader(`{"t":${entry}}`, new Uint8Array(dataBytes));
}

export function entry(dtype: string, shape: string, offsets: string): string {
  return `{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}`;
}

/** Every case is built from fixed bytes and a seeded stream of byte flips, so the corpus is the same on every run. */
export function buildCorpus(): MalformedCase[] {
  const cases: MalformedCase[] = [];
  const add = (name: string, bytes: Uint8Array, ...expected: (SafetensorsErrorCode | 'valid')[]) =>
    cases.push({ name, bytes, expected });

  // Truncation at every length: inside the prefix and header the file is too short; inside the data a tensor ends past it.
  for (let length = 0; length < VALID.byteLength; length++) {
    const expected = length < 8 + VALID_HEADER_LENGTH ? 'TRUNCATED' : 'OUT_OF_BOUNDS';
    add(`truncated to ${length} bytes`, VALID.slice(0, length), expected);
  }

  const body = VALID.subarray(8);
  const header = (length: bigint | number) => withLength(BigInt(length), body);
  add('header length = file size', header(VALID.byteLength), 'TRUNCATED');
  add('header length one past the file', header(VALID.byteLength - 7), 'TRUNCATED');
  add('header length 2^64 - 1', header(2n ** 64n - 1n), 'HEADER_TOO_LARGE');
  add('header length 2^63', header(2n ** 63n), 'HEADER_TOO_LARGE');
  add('header length 2^53 + 1', header(2n ** 53n + 1n), 'HEADER_TOO_LARGE');
  add('header length 100,000,001', header(100_000_001), 'HEADER_TOO_LARGE');
  add('header length 100,000,000 in a small file', header(100_000_000), 'TRUNCATED');
  add('header length 0', header(0), 'INVALID_HEADER');
  add('header length 1', header(1), 'INVALID_JSON');
  add('header length 7', header(7), 'INVALID_JSON');
  add('header length one short (odd, drops padding)', header(VALID_HEADER_LENGTH - 1), 'TRAILING_DATA');
  add('header length without the padding', header(VALID_HEADER_LENGTH - VALID_PADDING), 'TRAILING_DATA');
  add('header length cutting the closing brace', header(VALID_HEADER_LENGTH - VALID_PADDING - 1), 'INVALID_JSON');
  add('header length one long (odd, eats data)', header(VALID_HEADER_LENGTH + 1), 'INVALID_JSON');
  add('header length eight long', header(VALID_HEADER_LENGTH + 8), 'INVALID_JSON');
  add('header length cuts the JSON', header(VALID_HEADER_LENGTH - 16), 'INVALID_JSON');
  add('high bytes of the length set', header(BigInt(VALID_HEADER_LENGTH) | (1n << 40n)), 'HEADER_TOO_LARGE');

  for (const json of [
    '{',
    '{"t":',
    '{"t":}',
    '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},}',
    "{'t':1}",
    '{"t":NaN}',
    '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}}',
    '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} x',
    '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}\u0000',
    '{"a\u0001":1}',
    '{"t":{"dtype":"F32","shape":[0x2],"data_offsets":[0,8]}}',
    '{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}',
    '{{}}',
    '{"t" {}}',
    `{"deep":${'['.repeat(10_000)}}`,
  ]) {
    add(`invalid JSON ${JSON.stringify(json.slice(0, 40))}`, fileWithHeader(json, new Uint8Array(8)), 'INVALID_JSON');
  }
  for (const json of ['[]', '[{"t":1}]', '"text"', '42', 'null', 'true', ' {}', '\ufeff{}', '\n{}']) {
    add(`header not starting with an object: ${JSON.stringify(json)}`, fileWithHeader(json), 'INVALID_HEADER');
  }
  const raw = (...bytes: number[]) => withLength(BigInt(bytes.length), Uint8Array.from(bytes));
  add('header with invalid UTF-8', raw(0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20, 0x20), 'INVALID_HEADER');
  add('header with a lone continuation byte', raw(0x7b, 0x22, 0x80, 0x22, 0x3a, 0x31, 0x7d, 0x20), 'INVALID_HEADER');
  add('header with an overlong encoding', raw(0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d), 'INVALID_HEADER');
  add('header padded with NUL', withLength(8n, Buffer.from('{}\0\0\0\0\0\0', 'latin1')), 'INVALID_JSON');
  add('header padded with newlines and tabs', withLength(8n, Buffer.from('{}\n\t\r   ', 'latin1')), 'valid');
  add('empty header object, no data', fileWithHeader('{}'), 'valid');
  add('empty header object with data', fileWithHeader('{}', new Uint8Array(4)), 'TRAILING_DATA');

  for (const value of ['1', '[]', 'null', '"F32"', 'true', '[0,8]']) {
    add(`tensor entry ${value}`, fileWithEntry(value), 'INVALID_HEADER');
  }
  for (const dtype of ['1', 'null', '["F32"]', '{}']) {
    add(`dtype ${dtype}`, fileWithEntry(entry(dtype, '[2]', '[0,8]')), 'INVALID_HEADER');
  }
  add('dtype missing', fileWithEntry('{"shape":[2],"data_offsets":[0,8]}'), 'INVALID_HEADER');
  for (const dtype of ['f32', 'F128', '', 'FLOAT', 'float32', 'F8', 'Q4_0', '__proto__', 'toString', 'constructor', 'F32 ']) {
    add(`dtype ${JSON.stringify(dtype)}`, fileWithEntry(entry(JSON.stringify(dtype), '[2]', '[0,8]')), 'UNKNOWN_DTYPE');
  }

  for (const shape of [
    '[-1]',
    '[-0.5]',
    '[1.5]',
    '[2, 0.1]',
    '["2"]',
    '[null]',
    '[[2]]',
    '[true]',
    '{"0":2}',
    '"2"',
    '2',
    'null',
    '[1e20]',
    '[9007199254740992]',
    '[2,-3]',
  ]) {
    add(`shape ${shape}`, fileWithEntry(entry('"F32"', shape, '[0,8]')), 'INVALID_SHAPE');
  }
  add('shape missing', fileWithEntry('{"dtype":"F32","data_offsets":[0,8]}'), 'INVALID_SHAPE');
  const hugeShape = '[1000000000000000,1000000000000000]';
  add('shape with huge product', fileWithEntry(entry('"F32"', hugeShape, '[0,8]')), 'SIZE_MISMATCH');
  add('shape product overflowing 2^64', fileWithEntry(entry('"U8"', '[4294967296,4294967296,8]', '[0,8]')), 'SIZE_MISMATCH');
  add('shape [0] with 8 bytes', fileWithEntry(entry('"F32"', '[0]', '[0,8]')), 'SIZE_MISMATCH');
  add('scalar with 8 bytes of F32', fileWithEntry(entry('"F32"', '[]', '[0,8]')), 'SIZE_MISMATCH');
  add('scalar F32 with 4 bytes', fileWithEntry(entry('"F32"', '[]', '[0,4]'), 4), 'valid');
  add('shape too small for the bytes', fileWithEntry(entry('"F32"', '[1]', '[0,8]')), 'SIZE_MISMATCH');
  add('shape too large for the bytes', fileWithEntry(entry('"F32"', '[3]', '[0,8]')), 'SIZE_MISMATCH');
  add('wrong dtype size for the bytes', fileWithEntry(entry('"F64"', '[2]', '[0,8]')), 'SIZE_MISMATCH');

  const badOffsets = ['[0]', '[0,8,16]', '[]', '["0","8"]', '[-8,0]', '[0.5,8.5]', 'null', '"0,8"', '{"0":0,"1":8}', '[0,1e300]'];
  for (const offsets of badOffsets) {
    add(`data_offsets ${offsets}`, fileWithEntry(entry('"F32"', '[2]', offsets)), 'INVALID_OFFSETS');
  }
  add('data_offsets missing', fileWithEntry('{"dtype":"F32","shape":[2]}'), 'INVALID_OFFSETS');
  add('data_offsets reversed', fileWithEntry(entry('"F32"', '[2]', '[8,0]')), 'INVALID_OFFSETS');
  add('data_offsets past the file', fileWithEntry(entry('"F32"', '[2]', '[0,16]')), 'OUT_OF_BOUNDS');
  add('data_offsets far past the file', fileWithEntry(entry('"U8"', '[1000000000]', '[0,1000000000]')), 'OUT_OF_BOUNDS');
  add('data_offsets not starting at 0', fileWithEntry(entry('"F32"', '[1]', '[4,8]')), 'INVALID_OFFSETS');
  add('data shorter than the offsets', fileWithEntry(entry('"F32"', '[2]', '[0,8]'), 4), 'OUT_OF_BOUNDS');
  add('trailing byte after the data', fileWithEntry(entry('"F32"', '[2]', '[0,8]'), 9), 'TRAILING_DATA');

  const two = (first: string, second: string, dataBytes: number) =>
    fileWithHeader(`{"a":${first},"b":${second}}`, new Uint8Array(dataBytes));
  add('overlapping tensors', two(entry('"F32"', '[2]', '[0,8]'), entry('"F32"', '[2]', '[4,12]'), 12), 'INVALID_OFFSETS');
  add('identical ranges', two(entry('"F32"', '[2]', '[0,8]'), entry('"F32"', '[2]', '[0,8]'), 8), 'INVALID_OFFSETS');
  add('one range inside another', two(entry('"F32"', '[4]', '[0,16]'), entry('"F32"', '[1]', '[4,8]'), 16), 'INVALID_OFFSETS');
  add('gap between tensors', two(entry('"F32"', '[2]', '[0,8]'), entry('"F32"', '[2]', '[12,20]'), 20), 'INVALID_OFFSETS');
  add(
    'header order differs from offset order (valid)',
    two(entry('"F32"', '[2]', '[8,16]'), entry('"F32"', '[2]', '[0,8]'), 16),
    'valid',
  );
  add('second tensor past the file', two(entry('"F32"', '[2]', '[0,8]'), entry('"F32"', '[2]', '[8,16]'), 12), 'OUT_OF_BOUNDS');
  add('second tensor size mismatch', two(entry('"F32"', '[2]', '[0,8]'), entry('"F32"', '[3]', '[8,16]'), 16), 'SIZE_MISMATCH');
  add('bytes after the last tensor', two(entry('"F32"', '[2]', '[0,8]'), entry('"F32"', '[2]', '[8,16]'), 24), 'TRAILING_DATA');
  add('empty tensor between others (valid)', fileWithHeader(
    `{"a":${entry('"F32"', '[1]', '[0,4]')},"e":${entry('"F32"', '[0]', '[4,4]')},"b":${entry('"F32"', '[1]', '[4,8]')}}`,
    new Uint8Array(8),
  ), 'valid');

  const tensor = entry('"F32"', '[2]', '[0,8]');
  const withMetadata = (metadata: string) => fileWithHeader(`{"__metadata__":${metadata},"t":${tensor}}`, new Uint8Array(8));
  const badMetadata = ['1', '[]', '"pt"', 'true', '{"format":1}', '{"format":null}', '{"format":["pt"]}'];
  for (const metadata of [...badMetadata, '{"nested":{"a":"b"}}', '{"a":"b","c":false}']) {
    add(`metadata ${metadata}`, withMetadata(metadata), 'INVALID_METADATA');
  }
  add('metadata null (valid)', withMetadata('null'), 'valid');
  add('metadata last (valid)', fileWithHeader(`{"t":${tensor},"__metadata__":{"a":"b"}}`, new Uint8Array(8)), 'valid');
  add('metadata with __proto__ key (valid)', withMetadata('{"__proto__":"x"}'), 'valid');
  add('tensor named __proto__ (valid)', fileWithHeader(`{"__proto__":${tensor}}`, new Uint8Array(8)), 'valid');

  for (const extra of [1, 7, 8, 1000]) {
    add(`${extra} trailing garbage bytes`, Buffer.concat([VALID, Buffer.alloc(extra, 0xab)]), 'TRAILING_DATA');
  }
  add('data region missing', VALID.slice(0, 8 + VALID_HEADER_LENGTH), 'OUT_OF_BOUNDS');
  add('valid file (control)', VALID, 'valid');

  const random = new SeededRandom(20_240_321);
  const next = () => random.nextUint32();
  for (let flip = 0; flip < 150; flip++) {
    const bytes = VALID.slice();
    const count = 1 + (next() % 3);
    // Most changes land in the header, where the parser's decisions are (data bytes cannot be invalid), and half
    // write printable ASCII, which keeps the header UTF-8 and so reaches the JSON and entry checks.
    for (let change = 0; change < count; change++) {
      const position = next() % 4 === 0 ? next() % bytes.byteLength : next() % (8 + VALID_HEADER_LENGTH);
      if (next() % 2 === 0) bytes[position] ^= 1 + (next() % 255);
      else bytes[position] = 0x20 + (next() % 95);
    }
    add(`random byte flip #${flip}`, bytes, 'valid', ...VALIDATION_CODES);
  }
  return cases;
}
