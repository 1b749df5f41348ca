import { formatPythonFloat } from '@peft-ts/config/internal';
import { PeftError, countParameters, type Module } from '@peft-ts/core';

/**
 * PEFT 0.10's `print_trainable_parameters` line: `countParameters` (a quantized or half weight counts as the
 * values it stands for, shared tensors once) with the percentage as Python prints `100 * trainable / all`.
 */
export function parameterReport(model: Module): { trainable: number; total: number; line: string } {
  const { trainable, total } = countParameters(model);
  // Python raises ZeroDivisionError here.
  if (total === 0) throw new PeftError('parameter report: the model has no parameters');
  const format = (value: number) => value.toLocaleString('en-US');
  const line = `trainable params: ${format(trainable)} || all params: ${format(total)} || trainable%: ${formatPythonFloat((100 * trainable) / total)}`;
  return { trainable, total, line };
}
