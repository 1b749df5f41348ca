import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { parseJsonText } from './json-text.js';

function syntaxErrorMessage(text: string): string {
  try {
    parseJsonText(text, 'config.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a syntax error');
}

describe('parseJsonText', () => {
  it('returns the parsed value', () => {
    expect(parseJsonText('{"a": [1, "x", null, true]}')).toEqual({ a: [1, 'x', null, true] });
  });

  it.each([
    ['{\n  "r": 8,\n  "x": tru\n}', 'line 3, column 8: unexpected character "t"'],
    ['{\n  "r": 8,\n}', "line 3, column 1: expected a double-quoted property name"],
    ['{\n  "r" 8\n}', "line 2, column 7: expected ':' after a property name"],
    ['{"r": 8 "x": 1}', "line 1, column 9: expected ',' or '}' after a property value"],
    ['[1,,2]', 'line 1, column 4: unexpected character ","'],
    ['[1 2]', "line 1, column 4: expected ',' or ']' after an array element"],
    ['{"r": 8', "line 1, column 8: expected ',' or '}' after a property value"],
    ['', 'line 1, column 1: unexpected end of input'],
    ['{"a": "x\ny"}', 'line 1, column 9: unescaped control character in a string'],
    ['{"a": "\\q"}', 'line 1, column 8: invalid escape sequence in a string'],
    ['{"a": "abc', 'line 1, column 11: unterminated string'],
    ['{"a": -}', 'line 1, column 8: expected a digit'],
    ['{"a": 1.}', 'line 1, column 9: expected a digit'],
    ['{} x', 'line 1, column 4: unexpected content after the JSON value'],
    ['{"a": 01}', "line 1, column 8: expected ',' or '}' after a property value"],
  ])('locates the error in %j', (text, expected) => {
    expect(syntaxErrorMessage(text)).toBe(`config.json: invalid JSON at ${expected}`);
  });

  it('omits the source when none is given', () => {
    expect(() => parseJsonText('{')).toThrow(/^invalid JSON at line 1, column 2: /);
  });
});
