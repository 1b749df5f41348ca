import { PeftError } from '../errors.js';

/** A dense row-major float64 matrix on the host (`data[row * columns + column]`). */
export type HostMatrix = { readonly rows: number; readonly columns: number; readonly data: Float64Array };

/** `a = u · diag(s) · vt`, singular values in descending order. */
export type SingularValueDecomposition = {
  /** rows × rows (full) or rows × min(rows, columns) (reduced); orthonormal columns. */
  readonly u: HostMatrix;
  /** min(rows, columns) values, descending, ≥ 0. */
  readonly s: Float64Array;
  /** columns × columns (full) or min(rows, columns) × columns (reduced); orthonormal rows. */
  readonly vt: HostMatrix;
};

export type SvdOptions = {
  /** torch.linalg.svd's `full_matrices`: complete U and Vᵀ to square orthogonal matrices. Default false. */
  readonly fullMatrices?: boolean;
};

const EPSILON = 2 ** -52;
const MAX_SWEEPS = 80;

export function hostMatrix(rows: number, columns: number, data: ArrayLike<number> = new Float64Array(rows * columns)): HostMatrix {
  if (data.length !== rows * columns) {
    throw new PeftError(`hostMatrix: ${rows}×${columns} needs ${rows * columns} values, got ${data.length}`);
  }
  return { rows, columns, data: Float64Array.from(data) };
}

/**
 * Singular value decomposition by one-sided (Hestenes) Jacobi: columns are rotated pairwise until
 * mutually orthogonal, which gives singular values to high relative accuracy (no Gram matrix, so small
 * values do not lose half their digits) and works unchanged on rank-deficient input. Wide matrices are
 * decomposed through their transpose.
 */
export function svd(matrix: HostMatrix, options: SvdOptions = {}): SingularValueDecomposition {
  const { rows, columns } = matrix;
  if (!Number.isInteger(rows) || !Number.isInteger(columns) || rows < 1 || columns < 1) {
    throw new PeftError(`svd: expected a non-empty matrix, got ${rows}×${columns}`);
  }
  if (matrix.data.some((value) => !Number.isFinite(value))) throw new PeftError('svd: the matrix has non-finite values');
  const fullMatrices = options.fullMatrices ?? false;
  if (rows >= columns) return tallSvd(matrix, fullMatrices);
  const transposed = tallSvd(transpose(matrix), fullMatrices);
  return { u: transpose(transposed.vt), s: transposed.s, vt: transpose(transposed.u) };
}

/**
 * The reduced SVD of `left · right` (m×k times k×n) without forming the product: SVD of `left`, then of the
 * small k×n core. Costs O((m + n)·k²) per sweep instead of O(m·n²), so a rank-k matrix held as factors (a LoRA
 * delta) decomposes fast; it has min(m, k, n) singular values.
 */
export function svdOfProduct(left: HostMatrix, right: HostMatrix): SingularValueDecomposition {
  if (left.columns !== right.rows) throw new PeftError(`svdOfProduct: ${left.rows}×${left.columns} · ${right.rows}×${right.columns} do not fit`);
  const outer = svd(left);
  const scaledVt = hostMatrix(outer.vt.rows, outer.vt.columns, outer.vt.data.map((value, index) => value * outer.s[Math.floor(index / outer.vt.columns)]));
  const inner = svd(multiply(scaledVt, right));
  return { u: multiply(outer.u, inner.u), s: inner.s, vt: inner.vt };
}

/** rows ≥ columns. */
function tallSvd(matrix: HostMatrix, fullMatrices: boolean): SingularValueDecomposition {
  const { rows: m, columns: n } = matrix;
  // Column-major working copies: every rotation and dot product runs over contiguous memory.
  const work = new Float64Array(m * n);
  for (let row = 0; row < m; row++) for (let column = 0; column < n; column++) work[column * m + row] = matrix.data[row * n + column];
  const v = new Float64Array(n * n);
  for (let index = 0; index < n; index++) v[index * n + index] = 1;
  orthogonalizeColumns(work, m, n, v);

  const norms = Array.from({ length: n }, (_, column) => Math.sqrt(dot(work, column * m, work, column * m, m)));
  const order = norms.map((_, index) => index).sort((a, b) => norms[b] - norms[a]);
  const s = Float64Array.from(order, (column) => norms[column]);
  // Below this a column is rounding noise of the others: its direction is replaced by a completion vector.
  const negligible = (s[0] ?? 0) * m * EPSILON;

  const uColumns = fullMatrices ? m : n;
  const u = new Float64Array(m * uColumns);
  const basis: Float64Array[] = [];
  order.forEach((column, position) => {
    if (s[position] <= negligible) return;
    const vector = work.slice(column * m, (column + 1) * m);
    for (let row = 0; row < m; row++) vector[row] /= s[position];
    basis.push(vector);
  });
  const independent = basis.length;
  completeOrthonormalBasis(basis, m, uColumns);
  // Columns of null singular values take the completion vectors in order, after the independent ones.
  let completion = independent;
  order.forEach((_, position) => {
    const vector = s[position] > negligible ? basis[position] : basis[completion++];
    for (let row = 0; row < m; row++) u[row * uColumns + position] = vector[row];
  });
  for (let position = n; position < uColumns; position++) {
    const vector = basis[completion++];
    for (let row = 0; row < m; row++) u[row * uColumns + position] = vector[row];
  }

  const vt = new Float64Array(n * n);
  order.forEach((column, position) => {
    for (let index = 0; index < n; index++) vt[position * n + index] = v[column * n + index];
  });
  return { u: { rows: m, columns: uColumns, data: u }, s, vt: { rows: n, columns: n, data: vt } };
}

/** Rotates column pairs of `work` (m × n, column-major) until orthogonal, accumulating the rotations in `v` (column-major). */
function orthogonalizeColumns(work: Float64Array, m: number, n: number, v: Float64Array): void {
  const tolerance = Math.max(m, 1) * EPSILON;
  const squaredNorms = new Float64Array(n);
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    // Recomputed each sweep so the cheap per-rotation updates below cannot drift.
    for (let column = 0; column < n; column++) squaredNorms[column] = dot(work, column * m, work, column * m, m);
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const alpha = squaredNorms[p];
        const beta = squaredNorms[q];
        const gamma = dot(work, p * m, work, q * m, m);
        if (gamma === 0 || Math.abs(gamma) <= tolerance * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const tangent = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cosine = 1 / Math.sqrt(1 + tangent * tangent);
        const sine = cosine * tangent;
        rotate(work, p * m, q * m, m, cosine, sine);
        rotate(v, p * n, q * n, n, cosine, sine);
        // The rotation moves t·γ of squared norm from column p to column q.
        squaredNorms[p] = Math.max(alpha - tangent * gamma, 0);
        squaredNorms[q] = beta + tangent * gamma;
      }
    }
    if (!rotated) return;
  }
  throw new PeftError(`svd: one-sided Jacobi did not converge in ${MAX_SWEEPS} sweeps`);
}

function rotate(data: Float64Array, first: number, second: number, length: number, cosine: number, sine: number): void {
  for (let index = 0; index < length; index++) {
    const x = data[first + index];
    const y = data[second + index];
    data[first + index] = cosine * x - sine * y;
    data[second + index] = sine * x + cosine * y;
  }
}

function dot(a: Float64Array, aOffset: number, b: Float64Array, bOffset: number, length: number): number {
  let sum = 0;
  for (let index = 0; index < length; index++) sum += a[aOffset + index] * b[bOffset + index];
  return sum;
}

/**
 * Extends orthonormal `basis` (vectors of length m) to `size` vectors with unit vectors e_k projected off the
 * span (Gram–Schmidt, twice for orthogonality to working precision). A candidate is kept when at least
 * √(1/2m) of it survives: the surviving squared norms of all e_k add up to the missing dimension (≥ 1), so
 * one pass over k always finds enough.
 */
function completeOrthonormalBasis(basis: Float64Array[], m: number, size: number): void {
  const threshold = Math.sqrt(0.5 / m);
  for (let k = 0; k < m && basis.length < size; k++) {
    const candidate = new Float64Array(m);
    candidate[k] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (const vector of basis) {
        const projection = dot(candidate, 0, vector, 0, m);
        for (let row = 0; row < m; row++) candidate[row] -= projection * vector[row];
      }
    }
    const norm = Math.sqrt(dot(candidate, 0, candidate, 0, m));
    if (norm < threshold) continue;
    for (let row = 0; row < m; row++) candidate[row] /= norm;
    basis.push(candidate);
  }
  if (basis.length < size) throw new PeftError(`svd: could not complete an orthonormal basis (${basis.length} of ${size})`);
}

export function transpose(matrix: HostMatrix): HostMatrix {
  const { rows, columns, data } = matrix;
  const result = new Float64Array(rows * columns);
  for (let row = 0; row < rows; row++) for (let column = 0; column < columns; column++) result[column * rows + row] = data[row * columns + column];
  return { rows: columns, columns: rows, data: result };
}

/** `a · b`. */
export function multiply(a: HostMatrix, b: HostMatrix): HostMatrix {
  if (a.columns !== b.rows) throw new PeftError(`multiply: ${a.rows}×${a.columns} · ${b.rows}×${b.columns} do not fit`);
  const result = new Float64Array(a.rows * b.columns);
  for (let row = 0; row < a.rows; row++) {
    for (let inner = 0; inner < a.columns; inner++) {
      const factor = a.data[row * a.columns + inner];
      if (factor === 0) continue;
      const bRow = inner * b.columns;
      const out = row * b.columns;
      for (let column = 0; column < b.columns; column++) result[out + column] += factor * b.data[bRow + column];
    }
  }
  return { rows: a.rows, columns: b.columns, data: result };
}
