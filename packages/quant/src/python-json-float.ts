/** Shortest round-trip decimal digits of a positive finite number and the power of ten of the first digit. */
function shortestDigits(magnitude: number): { digits: string; exponent: number } {
  // String() gives the shortest round-trip digits, nearest to the value, like Python's repr.
  const [coefficient, exponentPart = '0'] = String(magnitude).split('e');
  const [integerPart, fractionPart = ''] = coefficient.split('.');
  const padded = integerPart + fractionPart;
  const digits = padded.replace(/^0+/, '');
  const exponent = Number(exponentPart) + integerPart.length - 1 - (padded.length - digits.length);
  return { digits: digits.replace(/0+$/, ''), exponent };
}

/**
 * A float as Python's `json.dumps` writes it (`float.__repr__`, with `NaN`/`Infinity` spelled as JSON
 * extensions): positional notation with at least one fractional digit for exponents −4..15, otherwise
 * `d.ddde±XX`. bnb writes `nested_offset` this way, so the quant-state bytes depend on it.
 */
export function pythonJsonFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  if (value === 0) return `${sign}0.0`;
  const { digits, exponent } = shortestDigits(Math.abs(value));
  if (exponent < -4 || exponent >= 16) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const exponentDigits = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${mantissa}e${exponent < 0 ? '-' : '+'}${exponentDigits}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const integerDigits = digits.padEnd(exponent + 1, '0');
  const fraction = digits.slice(exponent + 1) || '0';
  return `${sign}${integerDigits.slice(0, exponent + 1)}.${fraction}`;
}
