import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendNative } from './backend.js';

/** The addon's fused decoder kernels (src/native/decoder-kernels.cc); each writes into arrays the caller allocates. */
export type DecoderAddonFunctions = {
  /** Returns the mean NLL over rows whose target is not −100; logSumExp [rows] receives each counted row's value. */
  crossEntropy(logits: Float32Array, targets: Int32Array, logSumExp: Float32Array, rows: number, columns: number): number;
  crossEntropyGrad(dy: number, logits: Float32Array, targets: Int32Array, logSumExp: Float32Array, dLogits: Float32Array, rows: number, columns: number): void;
  /** x, out [batch, length, heads, dimension]; cos, sin [anglesBatch, length, dimension]; transposed: the gradient. */
  rotary(x: Float32Array, cos: Float32Array, sin: Float32Array, out: Float32Array, batch: number, length: number, heads: number, dimension: number, anglesBatch: number, transposed: boolean): void;
  /** scores, out [rows, columns] with rows over [batch, heads, length]; mask [maskBatch, length, columns]. */
  maskedSoftmax(scores: Float32Array, mask: Float32Array | null, out: Float32Array, rows: number, columns: number, length: number, rowsPerBatch: number, maskBatch: number, scale: number): void;
  maskedSoftmaxGrad(dy: Float32Array, probabilities: Float32Array, dx: Float32Array, rows: number, columns: number, scale: number): void;
  /** query, output [B, kv, G·T, d]; keys, values [B, kv, keys, d]; mask [maskBatch, T, keys]; probabilities [B, kv, G·T, keys]. */
  attention(query: Float32Array, keys: Float32Array, values: Float32Array, mask: Float32Array | null, output: Float32Array, probabilities: Float32Array, ...layout: AttentionArguments): void;
  attentionGrad(
    dy: Float32Array, query: Float32Array, keys: Float32Array, values: Float32Array, probabilities: Float32Array, mask: Float32Array | null,
    dQuery: Float32Array, dKeys: Float32Array, dValues: Float32Array, ...layout: AttentionArguments
  ): void;
};

type AttentionArguments = [batch: number, keyValueHeads: number, groups: number, length: number, keys: number, dimension: number, maskBatch: number, scale: number];

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: MathBackendNative; attrs?: tf.NamedAttrMap };

const kernel = (kernelFunc: (args: KernelArguments) => tf.TensorInfo[]) => kernelFunc as unknown as tf.KernelFunc;

function requireDtypes(kernelName: string, inputs: tf.NamedTensorInfoMap, int32Inputs: string[] = []) {
  for (const [name, tensor] of Object.entries(inputs)) {
    const expected = int32Inputs.includes(name) ? 'int32' : 'float32';
    if (tensor?.dtype !== expected) throw new Error(`${kernelName}: input '${name}' must be ${expected}, got ${tensor?.dtype}`);
  }
}

/** Rows and classes of logits [..., vocabulary] with targets of one value per row. */
function lossLayout(kernelName: string, logits: tf.TensorInfo, targets: tf.TensorInfo) {
  const columns = logits.shape[logits.shape.length - 1] ?? 0;
  const rows = columns === 0 ? 0 : tf.util.sizeFromShape(logits.shape) / columns;
  if (logits.shape.length < 2 || columns === 0 || tf.util.sizeFromShape(targets.shape) !== rows) {
    throw new Error(`${kernelName}: expected logits [..., vocabulary] and one target per row (${rows}), got [${logits.shape}] and [${targets.shape}]`);
  }
  return { rows, columns };
}

/** [batch, length, heads, dimension] of x, with cos and sin checked to be [1 or batch, length, 1, dimension]. */
function rotaryLayout(kernelName: string, x: tf.TensorInfo, cos: tf.TensorInfo, sin: tf.TensorInfo) {
  const [batch, length, heads, dimension] = x.shape;
  const [anglesBatch, anglesLength, anglesHeads, anglesDimension] = cos.shape;
  if (x.shape.length !== 4 || dimension % 2 !== 0 || cos.shape.length !== 4 || (anglesBatch !== 1 && anglesBatch !== batch) || anglesLength !== length ||
      anglesHeads !== 1 || anglesDimension !== dimension || !tf.util.arraysEqual(cos.shape, sin.shape)) {
    throw new Error(`${kernelName}: expected x [batch, length, heads, even dimension] and cos, sin [1 or batch, length, 1, dimension], got [${x.shape}], [${cos.shape}] and [${sin.shape}]`);
  }
  return { batch, length, heads, dimension, anglesBatch };
}

/**
 * The grouped attention layout of query [B, kv, G·T, d], keys and values [B, kv, keys, d] and a mask [1 or B, 1, T,
 * keys], checked against perHead [B, heads, T, keys].
 */
function attentionLayout(kernelName: string, inputs: { query: tf.TensorInfo; keys: tf.TensorInfo; values: tf.TensorInfo; mask?: tf.TensorInfo }, attrs: tf.NamedAttrMap): AttentionArguments {
  const { query, keys, values, mask } = inputs;
  const [batch, heads, length, keyLength] = attrs.perHead as number[];
  const [, keyValueHeads, groupRows, dimension] = query.shape;
  const maskBatch = mask?.shape[0] ?? 1;
  const groups = heads / keyValueHeads;
  const expectedKeys = [batch, keyValueHeads, keyLength, dimension];
  if (query.shape.length !== 4 || query.shape[0] !== batch || !Number.isInteger(groups) || groupRows !== groups * length ||
      !tf.util.arraysEqual(keys.shape, expectedKeys) || !tf.util.arraysEqual(values.shape, expectedKeys) ||
      (mask && (mask.shape.length !== 4 || (maskBatch !== 1 && maskBatch !== batch) || mask.shape[1] !== 1 || mask.shape[2] !== length || mask.shape[3] !== keyLength))) {
    throw new Error(
      `${kernelName}: expected query [B, kv, G·T, d], keys and values [B, kv, keys, d] and a mask [1 or B, 1, T, keys] for perHead [${attrs.perHead}], ` +
        `got [${query.shape}], [${keys.shape}], [${values.shape}] and [${mask?.shape ?? 'none'}]`,
    );
  }
  return [batch, keyValueHeads, groups, length, keyLength, dimension, maskBatch, Number(attrs.scale)];
}

/**
 * Kernels of decoder steps, under names ops dispatch to when the active backend registers them (else they run their
 * tf-op composition): `PeftCrossEntropy` (logits [..., vocab], int32 targets, −100 ignored) → [mean NLL, logSumExp
 * [rows]]; `PeftCrossEntropyGrad` (dy, logits, targets, logSumExp) → [dLogits]; `PeftRotary` (x [B, T, heads, d], cos,
 * sin [1 or B, T, 1, d]; transposed) → [x·cos + swapHalves(x)·sin], or with `transposed` its gradient
 * dy·cos + swapHalves(dy·sin); `PeftMaskedSoftmax` (scores, mask [1 or B, 1, T, keys] or none; scale, perHead [B,
 * heads, T, keys]) → [softmax(scores / scale + mask)] in the scores' layout; `PeftMaskedSoftmaxGrad` (dy,
 * probabilities; scale) → [P·(dy − Σ dy·P) / scale]; `PeftAttention` (query [B, kv, G·T, d], keys, values [B, kv, keys,
 * d], mask as PeftMaskedSoftmax's; scale, perHead) → [P·V, P] with P = softmax(Q·Kᵀ / scale + mask);
 * `PeftAttentionGrad` (dy, query, keys, values, probabilities, mask; scale, perHead) → [dQuery, dKeys, dValues].
 */
export function decoderKernels(): { kernelName: string; kernelFunc: tf.KernelFunc }[] {
  return [
    {
      kernelName: 'PeftCrossEntropy',
      kernelFunc: kernel(({ inputs, backend }) => {
        requireDtypes('PeftCrossEntropy', inputs, ['targets']);
        const { logits, targets } = inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
        const { rows, columns } = lossLayout('PeftCrossEntropy', logits, targets);
        const logSumExp = new Float32Array(rows);
        const loss = backend.addon.crossEntropy(backend.floats(logits), backend.words(targets), logSumExp, rows, columns);
        return [backend.makeTensorInfo([], 'float32', Float32Array.of(loss)), backend.makeTensorInfo([rows], 'float32', logSumExp)];
      }),
    },
    {
      kernelName: 'PeftCrossEntropyGrad',
      kernelFunc: kernel(({ inputs, backend }) => {
        requireDtypes('PeftCrossEntropyGrad', inputs, ['targets']);
        const { dy, logits, targets, logSumExp } = inputs as { dy: tf.TensorInfo; logits: tf.TensorInfo; targets: tf.TensorInfo; logSumExp: tf.TensorInfo };
        const { rows, columns } = lossLayout('PeftCrossEntropyGrad', logits, targets);
        if (tf.util.sizeFromShape(dy.shape) !== 1 || tf.util.sizeFromShape(logSumExp.shape) !== rows) {
          throw new Error(`PeftCrossEntropyGrad: expected a scalar dy and logSumExp [${rows}], got [${dy.shape}] and [${logSumExp.shape}]`);
        }
        const dyValue = backend.floats(dy)[0];
        return [backend.output([...logits.shape], (out) => backend.addon.crossEntropyGrad(dyValue, backend.floats(logits), backend.words(targets), backend.floats(logSumExp), out, rows, columns))];
      }),
    },
    {
      kernelName: 'PeftRotary',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        requireDtypes('PeftRotary', inputs);
        const { x, cos, sin } = inputs as { x: tf.TensorInfo; cos: tf.TensorInfo; sin: tf.TensorInfo };
        const { batch, length, heads, dimension, anglesBatch } = rotaryLayout('PeftRotary', x, cos, sin);
        return [
          backend.output([...x.shape], (out) =>
            backend.addon.rotary(backend.floats(x), backend.floats(cos), backend.floats(sin), out, batch, length, heads, dimension, anglesBatch, Boolean(attrs!.transposed)),
          ),
        ];
      }),
    },
    {
      kernelName: 'PeftMaskedSoftmax',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        requireDtypes('PeftMaskedSoftmax', inputs);
        const { scores, mask } = inputs as { scores: tf.TensorInfo; mask?: tf.TensorInfo };
        const [batch, heads, length, keys] = attrs!.perHead as number[];
        const maskBatch = mask?.shape[0] ?? 1;
        if (tf.util.sizeFromShape(scores.shape) !== batch * heads * length * keys || scores.shape[scores.shape.length - 1] !== keys ||
            (mask && (mask.shape.length !== 4 || (maskBatch !== 1 && maskBatch !== batch) || mask.shape[1] !== 1 || mask.shape[2] !== length || mask.shape[3] !== keys))) {
          throw new Error(`PeftMaskedSoftmax: expected scores of [${attrs!.perHead}] (perHead) and a mask [1 or ${batch}, 1, ${length}, ${keys}], got [${scores.shape}] and [${mask?.shape ?? 'none'}]`);
        }
        return [
          backend.output([...scores.shape], (out) =>
            backend.addon.maskedSoftmax(backend.floats(scores), mask ? backend.floats(mask) : null, out, batch * heads * length, keys, length, heads * length, maskBatch, Number(attrs!.scale)),
          ),
        ];
      }),
    },
    {
      kernelName: 'PeftMaskedSoftmaxGrad',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        requireDtypes('PeftMaskedSoftmaxGrad', inputs);
        const { dy, probabilities } = inputs as { dy: tf.TensorInfo; probabilities: tf.TensorInfo };
        const columns = probabilities.shape[probabilities.shape.length - 1] ?? 0;
        if (!tf.util.arraysEqual(dy.shape, probabilities.shape) || columns === 0) {
          throw new Error(`PeftMaskedSoftmaxGrad: dy and probabilities must share one non-empty shape, got [${dy.shape}] and [${probabilities.shape}]`);
        }
        const rows = tf.util.sizeFromShape(probabilities.shape) / columns;
        return [backend.output([...dy.shape], (out) => backend.addon.maskedSoftmaxGrad(backend.floats(dy), backend.floats(probabilities), out, rows, columns, Number(attrs!.scale)))];
      }),
    },
    {
      kernelName: 'PeftAttention',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        requireDtypes('PeftAttention', inputs);
        const tensors = inputs as { query: tf.TensorInfo; keys: tf.TensorInfo; values: tf.TensorInfo; mask?: tf.TensorInfo };
        const layout = attentionLayout('PeftAttention', tensors, attrs!);
        const { query, keys, values, mask } = tensors;
        const probabilitiesShape = [...query.shape.slice(0, 3), keys.shape[2]];
        return backend.outputs([[...query.shape], probabilitiesShape], ([output, probabilities]) =>
          backend.addon.attention(backend.floats(query), backend.floats(keys), backend.floats(values), mask ? backend.floats(mask) : null, output, probabilities, ...layout),
        );
      }),
    },
    {
      kernelName: 'PeftAttentionGrad',
      kernelFunc: kernel(({ inputs, backend, attrs }) => {
        requireDtypes('PeftAttentionGrad', inputs);
        const tensors = inputs as { dy: tf.TensorInfo; query: tf.TensorInfo; keys: tf.TensorInfo; values: tf.TensorInfo; probabilities: tf.TensorInfo; mask?: tf.TensorInfo };
        const layout = attentionLayout('PeftAttentionGrad', tensors, attrs!);
        const { dy, query, keys, values, probabilities, mask } = tensors;
        if (!tf.util.arraysEqual(dy.shape, query.shape) || !tf.util.arraysEqual(probabilities.shape, [...query.shape.slice(0, 3), keys.shape[2]])) {
          throw new Error(`PeftAttentionGrad: dy must have the query's shape and probabilities [B, kv, G·T, keys], got [${dy.shape}] and [${probabilities.shape}]`);
        }
        return backend.outputs([[...query.shape], [...keys.shape], [...values.shape]], ([dQuery, dKeys, dValues]) =>
          backend.addon.attentionGrad(
            backend.floats(dy), backend.floats(query), backend.floats(keys), backend.floats(values), backend.floats(probabilities), mask ? backend.floats(mask) : null,
            dQuery, dKeys, dValues, ...layout,
          ),
        );
      }),
    },
  ];
}
