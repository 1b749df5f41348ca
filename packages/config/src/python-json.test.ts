import { describe, expect, it } from 'vitest';
import { compareCodePoints, formatPythonFloat, formatPythonJson, PythonFloat } from './python-json.js';

describe('formatPythonFloat', () => {
  // Expected strings are what CPython's repr(float) prints.
  it.each([
    [0, '0.0'],
    [-0, '-0.0'],
    [6, '6.0'],
    [0.05, '0.05'],
    [0.1 + 0.2, '0.30000000000000004'],
    [2e-4, '0.0002'],
    [1e-4, '0.0001'],
    [1e-5, '1e-05'],
    [1.5e-7, '1.5e-07'],
    [-2.5e-5, '-2.5e-05'],
    [123.456, '123.456'],
    [1e15, '1000000000000000.0'],
    [1e16, '1e+16'],
    [12345678901234567890, '1.2345678901234567e+19'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [5e-324, '5e-324'],
    [2.6267786026000977, '2.6267786026000977'],
    [0.1, '0.1'],
    [100, '100.0'],
    [-2.5, '-2.5'],
    [0.00012345, '0.00012345'],
    [1234567890123456, '1234567890123456.0'],
    [1.5e300, '1.5e+300'],
    [Math.fround(0.1), '0.10000000149011612'],
  ])('%s → %s', (value, expected) => {
    expect(formatPythonFloat(value)).toBe(expected);
  });

  it('refuses values JSON cannot hold, or with allowNan writes them as json.dumps does', () => {
    expect(() => formatPythonFloat(Number.NaN)).toThrow(RangeError);
    expect(() => formatPythonFloat(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    const nonFinite = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    expect(nonFinite.map((value) => formatPythonFloat(value, { allowNan: true }))).toEqual(['NaN', 'Infinity', '-Infinity']);
  });
});

describe('formatPythonJson', () => {
  it('indents by two, sorts keys, keeps empty containers inline and writes no trailing newline', () => {
    const text = formatPythonJson({ b: [1, [2, 3], []], a: {}, c: { z: null, y: true } });
    expect(text).toBe(
      [
        '{',
        '  "a": {},',
        '  "b": [',
        '    1,',
        '    [',
        '      2,',
        '      3',
        '    ],',
        '    []',
        '  ],',
        '  "c": {',
        '    "y": true,',
        '    "z": null',
        '  }',
        '}',
      ].join('\n'),
    );
  });

  it('writes integral numbers as ints unless marked as Python floats', () => {
    expect(formatPythonJson([0, 8, 0.5, new PythonFloat(0), new PythonFloat(6), -3])).toBe(
      '[\n  0,\n  8,\n  0.5,\n  0.0,\n  6.0,\n  -3\n]',
    );
  });

  it('escapes like ensure_ascii=True', () => {
    expect(formatPythonJson('quote " backslash \\ \n\t\r\b\f \u0001 \u007f é 😀')).toBe(
      '"quote \\" backslash \\\\ \\n\\t\\r\\b\\f \\u0001 \\u007f \\u00e9 \\ud83d\\ude00"',
    );
  });

  it('skips undefined members', () => {
    expect(formatPythonJson({ a: undefined, b: 1 })).toBe('{\n  "b": 1\n}');
  });

  it('writes a checkpoint index as transformers does: code point key order, ASCII-only escapes', () => {
    const value = { b: 'é\u{1f600}\n\u007f\u0001"\\/', a: {}, '\uffff': 1, '\u{1f600}': 2, Z: 3 };
    expect(formatPythonJson(value)).toBe(
      '{\n  "Z": 3,\n  "a": {},\n  "b": "\\u00e9\\ud83d\\ude00\\n\\u007f\\u0001\\"\\\\/",\n  "\\uffff": 1,\n  "\\ud83d\\ude00": 2\n}',
    );
  });

  it('sorts keys by code point, as Python does, not by UTF-16 unit', () => {
    expect(formatPythonJson({ '😀': 1, '\uffff': 2 })).toBe('{\n  "\\uffff": 2,\n  "\\ud83d\\ude00": 1\n}');
    expect(compareCodePoints('a', 'ab')).toBeLessThan(0);
    expect(compareCodePoints('b', 'a')).toBeGreaterThan(0);
    expect(compareCodePoints('x', 'x')).toBe(0);
  });
});
