/** C `rintf` / `torch.round`: nearest integer, ties to even. */
export function roundHalfToEven(value: number): number {
  const rounded = Math.round(value);
  // Math.round sends ties up; an odd result from a tie must come down instead.
  return rounded - value === 0.5 && rounded % 2 !== 0 ? rounded - 1 : rounded;
}
