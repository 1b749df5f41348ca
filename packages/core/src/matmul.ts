import * as tf from '@tensorflow/tfjs-core';

/**
 * The wasm backend multiplies fast (XNNPACK) only for a single untransposed 2-D product: with a
 * transposed operand or a batch dimension it falls back to a loop some 15× slower, and autodiff's
 * matMul gradients are transposed products. So on wasm every product is rewritten as untransposed
 * 2-D products (explicit transposes cost a copy, far cheaper than the slow path), gradients
 * included; other backends use tfjs' matMul directly.
 *
 * A frozen weight (a non-trainable variable, which tfjs' variableGrads never differentiates) is a
 * constant here: its gradient is not computed (that skipped half the backward products of a LoRA
 * step) and its transpose is cached. XNNPACK packs the right operand anew for every new tensor (as
 * slow as a transpose, ~10 ns an element) and keeps the packing while that tensor lives, so a
 * cached transpose saves both copies on every call.
 *
 * An N-d left operand times a 2-D right one ([..., K] × [K, N], as in a linear layer) is one 2-D
 * product over the flattened rows; on wasm the flattening happens inside the custom gradient,
 * because tfjs' reshape keeps its input for the gradient (to read its shape), and that kept every
 * linear layer's output alive until the backward pass ended.
 */
/** `tf.matMul` semantics (batch dims must match, or `b` is 2-D and `a` of any rank), fast on wasm including its gradients. */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  const flat = a.rank !== 2 && b.rank === 2 && !transposeA;
  const inner = a.shape[a.rank - 1]!;
  const outer = b.shape[transposeB ? b.rank - 2 : b.rank - 1]!;
  const rows = (tensor: tf.Tensor, width: number) => (flat ? tf.reshape(tensor, [-1, width]) : tensor);
  const unflatten = (tensor: tf.Tensor) => (flat ? tf.reshape(tensor, [...a.shape.slice(0, -1), outer]) : tensor);
  if (tf.getBackend() !== 'wasm') return tf.tidy(() => unflatten(tf.matMul(rows(a, inner), b, transposeA, transposeB)));
  const frozenA = isFrozen(a);
  const frozenB = isFrozen(b);
  const forward = () => unflatten(slicedProduct(oriented(rows(a, inner), transposeA), oriented(b, transposeB)));
  if (frozenA && frozenB) return tf.tidy(forward);
  const product = tf.customGrad(((...argumentsAndSave: unknown[]) => {
    const save = argumentsAndSave.pop() as (tensors: tf.Tensor[]) => void;
    // Each gradient reads the other operand: with one operand frozen, the closure holds all the backward needs.
    if (!frozenA && !frozenB) save([a, b]);
    return {
      value: forward(),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // A frozen operand is read from the closure; the other one is then not needed (nor kept).
        const [savedA, savedB] = frozenA || frozenB ? [a, b] : saved;
        // d op(A) = dy·op(B)ᵀ and d op(B) = op(A)ᵀ·dy, each transposed back when the operand was.
        const gradientA = (gradient: tf.Tensor) =>
          tf.reshape(
            transposeA ? slicedProduct(oriented(savedB, transposeB), swapLastAxes(gradient)) : slicedProduct(gradient, oriented(savedB, !transposeB)),
            a.shape,
          );
        const gradientB = (gradient: tf.Tensor) => {
          const left = rows(savedA, inner);
          // op(A)ᵀ·dy contracts over rows: its larger operand is transposed (~3 ns an element) and the smaller one
          // goes to the right, where XNNPACK packs it (~10 ns an element). For LoRA's A (K = in, N = r) that is ~3× cheaper.
          if (left.shape[left.rank - (transposeA ? 2 : 1)]! > gradient.shape[gradient.rank - 1]!) {
            const product = slicedProduct(oriented(left, !transposeA), gradient);
            return transposeB ? swapLastAxes(product) : product;
          }
          const product = slicedProduct(swapLastAxes(gradient), oriented(left, transposeA));
          return transposeB ? product : swapLastAxes(product);
        };
        // tfjs runs a custom gradient outside the backward pass's per-node tidy: without this one its
        // transposes and slices would live until the whole backward pass ends.
        return tf.tidy(() => {
          const gradient = rows(dy, outer);
          return frozenA ? [gradientB(gradient)] : frozenB ? [gradientA(gradient)] : [gradientA(gradient), gradientB(gradient)];
        });
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (...operands: tf.Tensor[]) => tf.Tensor;
  return tf.tidy(() => (frozenA ? product(b) : frozenB ? product(a) : product(a, b)));
}

function isFrozen(tensor: tf.Tensor): tensor is tf.Variable {
  return tensor instanceof tf.Variable && !tensor.trainable;
}

/** The operand as it enters a product: transposed when asked (from the cache for a frozen 2-D weight). */
function oriented(tensor: tf.Tensor, transposed: boolean): tf.Tensor {
  if (!transposed) return tensor;
  return isFrozen(tensor) && tensor.rank === 2 ? cachedTranspose(tensor) : swapLastAxes(tensor);
}

/** Transposes of frozen weights, each valid while its variable holds the same data (assign replaces the dataId). */
const transposes = new Map<tf.Variable, { dataId: object; transposed: tf.Tensor }>();

function cachedTranspose(weight: tf.Variable): tf.Tensor {
  const cached = transposes.get(weight);
  if (cached?.dataId === weight.dataId) return cached.transposed;
  cached?.transposed.dispose();
  for (const [variable, entry] of transposes) {
    if (variable.isDisposed) {
      entry.transposed.dispose();
      transposes.delete(variable);
    }
  }
  const transposed = tf.keep(tf.transpose(weight));
  transposes.set(weight, { dataId: weight.dataId, transposed });
  return transposed;
}

function swapLastAxes(tensor: tf.Tensor): tf.Tensor {
  const axes = tensor.shape.map((_, axis) => axis);
  axes.push(...axes.splice(-2).reverse());
  return tf.transpose(tensor, axes);
}

/** [..., M, K] × [..., K, N] as one 2-D product per batch entry (no gradient of its own). */
function slicedProduct(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 2) return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.rank - 1];
  const batchShape = a.shape.slice(0, -2);
  const flatA = tf.unstack(tf.reshape(a, [-1, m, k]));
  const flatB = tf.unstack(tf.reshape(b, [-1, k, n]));
  return tf.reshape(tf.stack(flatA.map((slice, index) => tf.matMul(slice as tf.Tensor2D, flatB[index] as tf.Tensor2D))), [...batchShape, m, n]);
}
