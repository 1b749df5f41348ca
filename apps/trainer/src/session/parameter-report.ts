import { Embedding, isLinearLike, type Module, type Parameter } from '@peft-ts/core';

/**
 * Parameters as PEFT's `print_trainable_parameters` reports them: a quantized or half-precision linear or
 * embedding weight counts as the float weight it stands for (not its packed words); shared tensors count once.
 */
export function parameterReport(model: Module): { trainable: number; total: number; line: string } {
  const seen = new Set<Parameter>();
  let trainable = 0;
  let total = 0;
  for (const [, module] of model.namedModules()) {
    const packedSize = !module.hasParameter('weight') || module.parameter('weight').dtype === 'float32' ? null
      : isLinearLike(module) ? module.inFeatures * module.outFeatures
      : module instanceof Embedding ? module.numEmbeddings * module.embeddingDim
      : null;
    const packed = packedSize !== null;
    for (const [name, parameter] of module.directParameters()) {
      if (seen.has(parameter)) continue;
      seen.add(parameter);
      if (packed && name !== 'bias') {
        if (name === 'weight') total += packedSize;
        continue;
      }
      total += parameter.size;
      if (parameter.requiresGrad) trainable += parameter.size;
    }
  }
  const format = (value: number) => value.toLocaleString('en-US');
  const line = `trainable params: ${format(trainable)} || all params: ${format(total)} || trainable%: ${((100 * trainable) / total).toFixed(4)}`;
  return { trainable, total, line };
}
