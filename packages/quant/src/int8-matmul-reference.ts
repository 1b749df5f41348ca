import { QuantError } from './errors.js';
import { int8VectorwiseQuantize, type Int8Matrix } from './int8-vectorwise-quantize.js';

/**
 * Float64 reference of bnb's LLM.int8() forward (spec G.1) for `x [tokens, in]` against a quantized weight
 * `[out, in]`: activations are quantized row-wise with the same fp32 routine as weights (outlier columns
 * taken out by `threshold`), then
 * `out[t,o] = Σ_{i∉outliers} CA[t,i]·CB[o,i] · SCA[t]·SCB[o]/127²
 *          + Σ_{i∈outliers} x[t,i] · CB[o,i]·SCB[o]/127 + bias[o]`.
 * x is used as given (bnb first casts it to fp16).
 */
export function int8MatmulReference(
  x: Float32Array,
  tokens: number,
  weight: Int8Matrix,
  threshold = 0,
  bias?: ArrayLike<number>,
): Float64Array {
  const { rows: outFeatures, columns: inFeatures, quantized: weightCodes, rowStats: weightStats } = weight;
  if (bias !== undefined && bias.length !== outFeatures) {
    throw new QuantError(`bias needs ${outFeatures} values, got ${bias.length}`);
  }
  const activations = int8VectorwiseQuantize(x, tokens, inFeatures, threshold);
  const out = new Float64Array(tokens * outFeatures);
  for (let token = 0; token < tokens; token++) {
    const activationRow = token * inFeatures;
    for (let output = 0; output < outFeatures; output++) {
      const weightRow = output * inFeatures;
      let integerSum = 0;
      for (let input = 0; input < inFeatures; input++) {
        integerSum += activations.quantized[activationRow + input] * weightCodes[weightRow + input];
      }
      let value = (integerSum * activations.rowStats[token] * weightStats[output]) / (127 * 127);
      for (const input of activations.outlierColumns) {
        value += x[activationRow + input] * ((weightCodes[weightRow + input] * weightStats[output]) / 127);
      }
      out[token * outFeatures + output] = value + (bias?.[output] ?? 0);
    }
  }
  return out;
}
