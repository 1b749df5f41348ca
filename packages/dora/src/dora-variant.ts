import * as tf from '@tensorflow/tfjs-core';
import { Parameter, type Conv2d } from '@peft-ts/core';
import { conv2d, linear, rowNorms, runFusedKernel, untracked } from '@peft-ts/core/internal';
import { LoraLayer, LoraLinear, type LoraVariant } from '@peft-ts/lora';

export const MAGNITUDE_PARAMETER = 'lora_magnitude_vector';

/** What differs between DoRA on a Linear and on a Conv2d: shapes and the bias-free base projection. */
type DoraGeometry = {
  /** Shape the per-output-feature factors take to broadcast over the layer output. */
  broadcastShape(outFeatures: number): number[];
  /** `x·Wᵀ` (or the convolution) without bias. */
  project(layer: LoraLayer, input: tf.Tensor, weight: tf.Tensor): tf.Tensor;
};

/**
 * ‖W + ΔW‖ per output feature, with W the (dequantized) base weight; on a backend with `PeftLowRankRowNorms` a
 * linear layer's W + s·B·A is formed a few rows at a time instead of whole.
 */
function weightNorm(layer: LoraLayer, adapterName: string, weight: tf.Tensor): tf.Tensor1D {
  if (layer instanceof LoraLinear && weight.rank === 2) {
    const inputs = { weight, left: layer.loraB(adapterName).weight.value, right: layer.loraA(adapterName).weight.value };
    const fused = runFusedKernel('PeftLowRankRowNorms', inputs, { scaling: layer.scaling(adapterName) });
    if (fused) return fused[0] as tf.Tensor1D;
  }
  return tf.tidy(() => rowNorms(tf.add(weight, layer.deltaWeight(adapterName))));
}

function baseWeight(layer: LoraLayer): tf.Tensor {
  return layer.baseLayer.weightAccess!.getBaseWeight();
}

/**
 * DoRA (PEFT 0.10 §C) as a LoRA variant: a trainable magnitude m per output feature, initialised
 * to ‖W + s·B·A‖; forward `(m/‖W+s·B·A‖ − 1)·(x·Wᵀ) + (m/‖·‖)·s·B(A(x))` on top of base(x), the
 * norm detached, the bias never rescaled. Unlike PEFT 0.10 every adapter keeps its own magnitude,
 * dropout applies on quantized layers too, and with no active dropout the base output is reused
 * instead of a second full matmul.
 */
function createDoraVariant(geometry: DoraGeometry): LoraVariant {
  // Norms at merge time, needed to undo the merge exactly (not persisted, as in PEFT).
  const mergeNorms = new WeakMap<LoraLayer, Map<string, tf.Tensor>>();
  const factors = (layer: LoraLayer, adapterName: string, norm: tf.Tensor) =>
    tf.div(tf.reshape(layer.parameterDict(MAGNITUDE_PARAMETER).get(adapterName)!.value, [-1]), norm);

  return {
    init(layer, adapterName) {
      if (layer.isShapeOnly) {
        const outFeatures = layer.baseLayer.parameter('weight').shape[0];
        const shape = layer.baseLayer.kind === 'conv2d' ? geometry.broadcastShape(outFeatures) : [outFeatures];
        layer.parameterDict(MAGNITUDE_PARAMETER).set(adapterName, Parameter.meta(shape));
        return;
      }
      const magnitude = tf.tidy(() => {
        const weight = baseWeight(layer);
        const norm = weightNorm(layer, adapterName, weight);
        return weight.rank === 4 ? tf.reshape(norm, geometry.broadcastShape(norm.shape[0])) : norm;
      });
      layer.parameterDict(MAGNITUDE_PARAMETER).set(adapterName, new Parameter(magnitude));
      magnitude.dispose();
    },

    forward(layer, adapterName, input, baseOutput) {
      return tf.tidy(() => {
        const dropout = layer.dropout(adapterName);
        const dropped = dropout.forward(input);
        const weight = baseWeight(layer);
        const norm = untracked(() => weightNorm(layer, adapterName, weight));
        const scale = tf.reshape(factors(layer, adapterName, norm), geometry.broadcastShape(norm.shape[0]));
        const bias = layer.baseLayer.hasParameter('bias') ? layer.baseLayer.parameter('bias').value : null;
        // Without dropout the bias-free base projection is base(x) − b: no second matmul.
        const projected = dropout.isIdentity
          ? bias
            ? tf.sub(baseOutput, tf.reshape(bias, geometry.broadcastShape(bias.shape[0])))
            : baseOutput
          : geometry.project(layer, dropped, weight);
        return tf.add(tf.mul(tf.sub(scale, 1), projected), tf.mul(scale, layer.loraDelta(adapterName, dropped)));
      });
    },

    // Without dropout, base(x) + (m/‖·‖ − 1)·x·Wᵀ + (m/‖·‖)·s·B(A(x)) = (m/‖·‖)·(x·Wᵀ + s·B(A(x))) + b: the fused
    // LoRA product rescaled, one multiply each way instead of the separate product and five output-wide ops.
    fusedForward(layer, adapterName, input) {
      if (!layer.dropout(adapterName).isIdentity) return null;
      const product = layer.fusedLoraForward(adapterName, input, { bias: false });
      if (!product) return null;
      const output = tf.tidy(() => {
        const norm = untracked(() => weightNorm(layer, adapterName, baseWeight(layer)));
        const scaled = tf.mul(product, tf.reshape(factors(layer, adapterName, norm), geometry.broadcastShape(norm.shape[0])));
        return layer.baseLayer.hasParameter('bias') ? tf.add(scaled, layer.baseLayer.parameter('bias').value) : scaled;
      });
      product.dispose();
      return output;
    },

    merge(layer, adapterName, weight) {
      const norm = tf.keep(untracked(() => weightNorm(layer, adapterName, weight)));
      const norms = mergeNorms.get(layer) ?? new Map<string, tf.Tensor>();
      norms.get(adapterName)?.dispose();
      norms.set(adapterName, norm);
      mergeNorms.set(layer, norms);
      return tf.tidy(() => {
        const scale = tf.reshape(factors(layer, adapterName, norm), [-1, ...new Array(weight.rank - 1).fill(1)]);
        return tf.mul(scale, tf.add(weight, layer.deltaWeight(adapterName)));
      });
    },

    unmerge(layer, adapterName, weight) {
      const norm = mergeNorms.get(layer)?.get(adapterName);
      if (!norm) throw new Error(`DoRA adapter '${adapterName}' has no merge record on this layer`);
      const restored = tf.tidy(() => {
        const scale = tf.reshape(factors(layer, adapterName, norm), [-1, ...new Array(weight.rank - 1).fill(1)]);
        return tf.sub(tf.div(weight, scale), layer.deltaWeight(adapterName));
      });
      norm.dispose();
      mergeNorms.get(layer)!.delete(adapterName);
      return restored;
    },

    // The magnitude goes with the layer's per-adapter dictionaries (parameterDict); only the merge record is ours.
    remove(layer, adapterName) {
      mergeNorms.get(layer)?.get(adapterName)?.dispose();
      mergeNorms.get(layer)?.delete(adapterName);
    },
  };
}

/** DoRA on any linear-like layer (float, 8-bit, 4-bit through WeightAccess): magnitude shape [out]. */
export const doraLinearVariant: LoraVariant = createDoraVariant({
  broadcastShape: (outFeatures) => [outFeatures],
  project: (_layer, input, weight) => linear(input, weight),
});

/** DoRA on Conv2d: magnitude stored [1, out, 1, 1] as PEFT saves it; norm over in × kh × kw. */
export const doraConv2dVariant: LoraVariant = createDoraVariant({
  broadcastShape: (outFeatures) => [1, outFeatures, 1, 1],
  project: (layer, input, weight) => conv2d(input, weight, null, (layer.baseLayer as unknown as Conv2d).geometry),
});

