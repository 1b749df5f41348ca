import { ConfigError } from './config-error.js';

class SyntaxProblem {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

/**
 * Re-reads text that JSON.parse rejected to find where it goes wrong: V8's messages give a position for only
 * some errors (not for e.g. "Unexpected token"), and never a line and column.
 */
class SyntaxScanner {
  private position = 0;

  constructor(private readonly text: string) {}

  findProblem(): SyntaxProblem | undefined {
    try {
      this.value();
      this.skipWhitespace();
      if (this.position < this.text.length) this.fail('unexpected content after the JSON value');
      return undefined;
    } catch (problem) {
      if (problem instanceof SyntaxProblem) return problem;
      throw problem;
    }
  }

  private fail(message: string): never {
    throw new SyntaxProblem(this.position, message);
  }

  private skipWhitespace(): void {
    while (this.position < this.text.length && ' \t\n\r'.includes(this.text[this.position])) this.position += 1;
  }

  private value(): void {
    this.skipWhitespace();
    const character = this.text[this.position];
    if (character === undefined) this.fail('unexpected end of input');
    else if (character === '{') this.object();
    else if (character === '[') this.array();
    else if (character === '"') this.string();
    else if (character === '-' || (character >= '0' && character <= '9')) this.number();
    else this.literal();
  }

  private object(): void {
    this.position += 1;
    this.skipWhitespace();
    if (this.text[this.position] === '}') {
      this.position += 1;
      return;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.position] !== '"') this.fail('expected a double-quoted property name');
      this.string();
      this.skipWhitespace();
      if (this.text[this.position] !== ':') this.fail("expected ':' after a property name");
      this.position += 1;
      this.value();
      this.skipWhitespace();
      const separator = this.text[this.position];
      this.position += 1;
      if (separator === '}') return;
      if (separator !== ',') {
        this.position -= 1;
        this.fail("expected ',' or '}' after a property value");
      }
    }
  }

  private array(): void {
    this.position += 1;
    this.skipWhitespace();
    if (this.text[this.position] === ']') {
      this.position += 1;
      return;
    }
    for (;;) {
      this.value();
      this.skipWhitespace();
      const separator = this.text[this.position];
      this.position += 1;
      if (separator === ']') return;
      if (separator !== ',') {
        this.position -= 1;
        this.fail("expected ',' or ']' after an array element");
      }
    }
  }

  private string(): void {
    this.position += 1;
    for (;;) {
      const character = this.text[this.position];
      if (character === undefined) this.fail('unterminated string');
      if (character === '"') {
        this.position += 1;
        return;
      }
      if (character < ' ') this.fail('unescaped control character in a string');
      if (character === '\\') {
        const escape = this.text[this.position + 1] ?? '';
        if (escape === 'u' && /^[0-9A-Fa-f]{4}$/.test(this.text.slice(this.position + 2, this.position + 6))) {
          this.position += 4;
        } else if (escape === '' || !'"\\/bfnrt'.includes(escape)) {
          this.fail('invalid escape sequence in a string');
        }
        this.position += 1;
      }
      this.position += 1;
    }
  }

  private digits(): void {
    const start = this.position;
    while (/[0-9]/.test(this.text[this.position] ?? '')) this.position += 1;
    if (this.position === start) this.fail('expected a digit');
  }

  private number(): void {
    if (this.text[this.position] === '-') this.position += 1;
    if (this.text[this.position] === '0') this.position += 1;
    else this.digits();
    if (this.text[this.position] === '.') {
      this.position += 1;
      this.digits();
    }
    if (this.text[this.position] === 'e' || this.text[this.position] === 'E') {
      this.position += 1;
      if (this.text[this.position] === '+' || this.text[this.position] === '-') this.position += 1;
      this.digits();
    }
  }

  private literal(): void {
    for (const word of ['true', 'false', 'null']) {
      if (this.text.startsWith(word, this.position)) {
        this.position += word.length;
        return;
      }
    }
    this.fail(`unexpected character ${JSON.stringify(this.text[this.position])}`);
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** JSON.parse, but a syntax error becomes a ConfigError naming the source, line and column. */
export function parseJsonText(text: string, source?: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const problem = new SyntaxScanner(text).findProblem();
    const where = problem ? lineAndColumn(text, problem.offset) : undefined;
    const message = where
      ? `invalid JSON at line ${where.line}, column ${where.column}: ${problem?.message}`
      : `invalid JSON: ${(error as Error).message}`;
    throw new ConfigError([{ path: '', message }], source);
  }
}
