"""Matrix products handed straight to BLAS, writing into a buffer you give (no temporary, no transpose copy)."""
import numpy as np
from scipy.linalg import blas as _blas

_GEMM = {np.dtype(np.float32): _blas.sgemm, np.dtype(np.float64): _blas.dgemm}


def _blas_operand(m):
    """(array, trans) with op(array) == m for Fortran BLAS, copying only if m is neither C- nor F-contiguous."""
    if m.flags.f_contiguous:
        return m, 0
    if m.flags.c_contiguous:
        return m.T, 1
    return np.asfortranarray(m), 0


def gemm(a, b, out, accumulate=False):
    """``out[...] = a @ b`` (or ``out += a @ b``) in place, for 2-D arrays; replaces ``a @ b``.

    float32 and float64 go to BLAS directly (no temporary, transposed operands
    for free); other dtypes fall back to ``np.matmul``.  ``out`` must be C-contiguous.

    Shape: a (m, k), b (k, n), out (m, n)
    """
    fn = _GEMM.get(out.dtype)
    if fn is None or a.dtype != out.dtype or b.dtype != out.dtype or out.size == 0 or a.shape[1] == 0:
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return out
    if not out.flags.c_contiguous or a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"gemm needs a (m, k) @ (k, n) into a C-contiguous (m, n); got {a.shape} @ {b.shape} "
                         f"into {out.shape} (C-contiguous: {out.flags.c_contiguous})")
    # In Fortran order out is out.T (n, m) = b.T @ a.T.
    bt, trans_b = _blas_operand(b.T)
    at, trans_a = _blas_operand(a.T)
    fn(1.0, bt, at, beta=1.0 if accumulate else 0.0, c=out.T, overwrite_c=1, trans_a=trans_b, trans_b=trans_a)
    return out


def column_sums(m, store):
    """``m.sum(axis=0)`` as a matrix-vector product (ones @ m): much faster than NumPy's reduction for narrow rows.

    ``store`` keeps the row of ones between calls.

    Shape: m (rows, n) -> (n,)
    """
    if m.dtype not in _GEMM or not m.flags.c_contiguous:
        return m.sum(axis=0)
    ones = store.get("ones")
    if ones is None or ones.shape[1] < m.shape[0] or ones.dtype != m.dtype:
        ones = store["ones"] = np.ones((1, m.shape[0]), m.dtype)
    return gemm(ones[:, :m.shape[0]], m, np.empty((1, m.shape[1]), m.dtype))[0]


def fill_rows(out, row):
    """``out[...] = row`` for every row of a C-contiguous (m, n) array, in long runs.

    Broadcasting a short row directly makes NumPy loop over m runs of n numbers;
    copying a block of the row repeated ~4096 numbers long is several times faster.

    Shape: out (m, n), row (n,) -> out
    """
    m, n = out.shape
    reps = min(m, 4096 // max(n, 1))
    if reps > 1 and n > 0 and out.flags.c_contiguous:
        whole = m - m % reps
        block = np.tile(row.astype(out.dtype, copy=False), reps)                   # (reps*n,)
        out[:whole].reshape(-1, reps * n)[...] = block
        out[whole:] = row
    else:
        out[...] = row
    return out
