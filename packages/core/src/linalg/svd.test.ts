import { describe, expect, it } from 'vitest';
import { PeftError } from '../errors.js';
import { SeededRandom } from '../random.js';
import { hostMatrix, multiply, svd, svdOfProduct, transpose, type HostMatrix } from './svd.js';

function randomMatrix(rows: number, columns: number, seed: number): HostMatrix {
  const random = new SeededRandom(seed);
  return hostMatrix(rows, columns, Array.from({ length: rows * columns }, () => random.next() * 2 - 1));
}

/** A random orthogonal matrix as a product of Householder reflections (independent of the SVD code). */
function randomOrthogonal(size: number, seed: number): HostMatrix {
  let result = identity(size);
  const random = new SeededRandom(seed, 7);
  for (let reflection = 0; reflection < size; reflection++) {
    const v = Array.from({ length: size }, () => random.next() - 0.5);
    const norm2 = v.reduce((sum, x) => sum + x * x, 0);
    const householder = identity(size);
    for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) householder.data[i * size + j] -= (2 * v[i] * v[j]) / norm2;
    result = multiply(result, householder);
  }
  return result;
}

function identity(size: number): HostMatrix {
  const matrix = hostMatrix(size, size);
  for (let i = 0; i < size; i++) matrix.data[i * size + i] = 1;
  return matrix;
}

/** U[:, :k] · diag(s) · Vᵀ[:k, :] with k = s.length. */
function reconstruct({ u, s, vt }: ReturnType<typeof svd>): HostMatrix {
  const k = s.length;
  const scaled = hostMatrix(u.rows, k);
  for (let row = 0; row < u.rows; row++) for (let j = 0; j < k; j++) scaled.data[row * k + j] = u.data[row * u.columns + j] * s[j];
  return multiply(scaled, hostMatrix(k, vt.columns, vt.data.subarray(0, k * vt.columns)));
}

/** A matrix with prescribed singular values: Q₁ · diag(values) · Q₂ᵀ. */
function withSingularValues(rows: number, columns: number, values: number[], seed: number): HostMatrix {
  const middle = hostMatrix(rows, columns);
  values.forEach((value, index) => (middle.data[index * columns + index] = value));
  return multiply(multiply(randomOrthogonal(rows, seed), middle), transpose(randomOrthogonal(columns, seed + 1)));
}

function maxAbs(a: HostMatrix, b: HostMatrix): number {
  return a.data.reduce((worst, value, index) => Math.max(worst, Math.abs(value - b.data[index])), 0);
}

function frobenius(matrix: HostMatrix): number {
  return Math.sqrt(matrix.data.reduce((sum, value) => sum + value * value, 0));
}

/** max |QᵀQ − I| over the columns of `q`. */
function orthogonalityError(q: HostMatrix): number {
  return maxAbs(multiply(transpose(q), q), identity(q.columns));
}

describe('svd', () => {
  it('decomposes a hand-checked 2×2: [[3, 0], [4, 5]] has singular values 3√5 and √5', () => {
    const result = svd(hostMatrix(2, 2, [3, 0, 4, 5]));
    expect(result.s[0]).toBeCloseTo(3 * Math.sqrt(5), 14);
    expect(result.s[1]).toBeCloseTo(Math.sqrt(5), 14);
    expect(maxAbs(reconstruct(result), hostMatrix(2, 2, [3, 0, 4, 5]))).toBeLessThan(1e-14);
  });

  const shapes: [number, number][] = [[7, 7], [12, 5], [5, 12], [1, 9], [9, 1], [1, 1], [40, 33]];
  for (const [rows, columns] of shapes) {
    for (const fullMatrices of [false, true]) {
      it(`reconstructs a random ${rows}×${columns} with orthonormal factors (fullMatrices ${fullMatrices})`, () => {
        const matrix = randomMatrix(rows, columns, rows * 100 + columns);
        const result = svd(matrix, { fullMatrices });
        const k = Math.min(rows, columns);
        expect(result.s.length).toBe(k);
        expect([result.u.rows, result.u.columns]).toEqual([rows, fullMatrices ? rows : k]);
        expect([result.vt.rows, result.vt.columns]).toEqual([fullMatrices ? columns : k, columns]);
        expect(maxAbs(reconstruct(result), matrix) / frobenius(matrix)).toBeLessThan(1e-13);
        expect(orthogonalityError(result.u)).toBeLessThan(1e-13);
        expect(orthogonalityError(transpose(result.vt))).toBeLessThan(1e-13);
        for (let index = 1; index < k; index++) expect(result.s[index]).toBeLessThanOrEqual(result.s[index - 1]);
      });
    }
  }

  it('finds prescribed singular values to high relative accuracy, small ones included', () => {
    const values = [50, 3, 1, 1e-3, 1e-6, 1e-9];
    for (const [rows, columns] of [[9, 6], [6, 9]] as const) {
      const result = svd(withSingularValues(rows, columns, values, rows));
      values.forEach((value, index) => expect(Math.abs(result.s[index] - value) / value).toBeLessThan(1e-6));
      // The large ones are exact to rounding.
      expect(Math.abs(result.s[1] - 3) / 3).toBeLessThan(1e-13);
    }
  });

  it('handles rank-deficient input: zero singular values, still orthonormal (full and reduced) factors', () => {
    for (const fullMatrices of [false, true]) {
      const matrix = withSingularValues(10, 6, [4, 2, 1], 3);
      const result = svd(matrix, { fullMatrices });
      expect(Array.from(result.s.subarray(0, 3))).toEqual([expect.closeTo(4, 13), expect.closeTo(2, 13), expect.closeTo(1, 13)]);
      for (const value of result.s.subarray(3)) expect(value).toBeLessThan(1e-14);
      expect(orthogonalityError(result.u)).toBeLessThan(1e-13);
      expect(orthogonalityError(transpose(result.vt))).toBeLessThan(1e-13);
      expect(maxAbs(reconstruct(result), matrix)).toBeLessThan(1e-13);
    }
  });

  it('decomposes the zero matrix and a rank-1 outer product', () => {
    const zero = svd(hostMatrix(3, 4), { fullMatrices: true });
    expect(Array.from(zero.s)).toEqual([0, 0, 0]);
    expect(orthogonalityError(zero.u)).toBeLessThan(1e-15);
    expect(orthogonalityError(transpose(zero.vt))).toBeLessThan(1e-15);

    // [1, 2, 2]ᵀ · [3, 4] has the single singular value ‖·‖·‖·‖ = 3 · 5.
    const outer = hostMatrix(3, 2, [3, 4, 6, 8, 6, 8]);
    const result = svd(outer);
    expect(result.s[0]).toBeCloseTo(15, 13);
    expect(result.s[1]).toBeLessThan(1e-14);
    expect(Math.abs(result.vt.data[0])).toBeCloseTo(0.6, 14);
    expect(Math.abs(result.u.data[0])).toBeCloseTo(1 / 3, 14);
  });

  it('decomposes a product of factors as the SVD of the product itself, with min(m, k, n) values', () => {
    for (const [m, k, n] of [[30, 4, 20], [5, 8, 12], [12, 3, 2]] as const) {
      const left = randomMatrix(m, k, m + k);
      const right = randomMatrix(k, n, k + n);
      const product = multiply(left, right);
      const factored = svdOfProduct(left, right);
      const dense = svd(product);
      const count = Math.min(m, k, n);
      expect(factored.s.length).toBe(count);
      for (let index = 0; index < count; index++) expect(factored.s[index]).toBeCloseTo(dense.s[index], 12);
      expect(maxAbs(reconstruct(factored), product) / frobenius(product)).toBeLessThan(1e-13);
      expect(orthogonalityError(factored.u)).toBeLessThan(1e-13);
      expect(orthogonalityError(transpose(factored.vt))).toBeLessThan(1e-13);
    }
    expect(() => svdOfProduct(hostMatrix(2, 3), hostMatrix(2, 3))).toThrow('svdOfProduct: 2×3 · 2×3 do not fit');
  });

  it('refuses empty and non-finite matrices', () => {
    expect(() => svd({ rows: 0, columns: 3, data: new Float64Array() })).toThrow(PeftError);
    expect(() => svd(hostMatrix(1, 2, [1, Number.NaN]))).toThrow('svd: the matrix has non-finite values');
    expect(() => hostMatrix(2, 2, [1, 2, 3])).toThrow('hostMatrix: 2×2 needs 4 values, got 3');
  });
});
