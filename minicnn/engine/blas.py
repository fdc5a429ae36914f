"""Matrix products handed straight to BLAS, writing into a buffer you give (no temporary, no transpose copy).

The products go to the OpenBLAS that NumPy itself ships with, through its CBLAS
interface (``cblas.py``), so that a training step runs on one BLAS and one pool
of threads; SciPy's Fortran BLAS is the fallback where that library is not found.
With more than one engine thread, a product is cut by the rows of its result
and the parts run on the engine's threads with BLAS on one thread in each
(``minicnn.engine.threads`` says why).
"""
import numpy as np

from minicnn.engine import cblas, threads
from minicnn.engine.buffers import filled

GEMM_PART = 1 << 18     # multiply-adds per part below which a product runs whole


def _rows_in_place(m):
    """Whether BLAS reads the 2-D ``m`` in place as row-major: unit column stride, rows at least a row apart
    (C-contiguous, or a block of columns of a C-contiguous array, ``a[:, lo:hi]``)."""
    size = m.itemsize
    return m.strides[1] == size and m.strides[0] % size == 0 and m.strides[0] >= max(1, m.shape[1]) * size


def _blas_operand(m):
    """(array, transposed) with op(array) == m for a row-major BLAS, copying only if neither m nor m.T is
    row-major in place (``_rows_in_place``): a block of columns, ``cols[:, lo:hi].T``, is read where it is."""
    if m.flags.c_contiguous:
        return m, False
    if m.flags.f_contiguous:
        return m.T, True
    if _rows_in_place(m):
        return m, False
    if _rows_in_place(m.T):
        return m.T, True
    return np.ascontiguousarray(m), False


def gemm(a, b, out, accumulate=False):
    """``out[...] = a @ b`` (or ``out += a @ b``) in place, for 2-D arrays; replaces ``a @ b``.

    float32 and float64 go to BLAS directly (no temporary, transposed operands
    for free); other dtypes fall back to ``np.matmul``.  ``out`` must be C-contiguous.

    Shape: a (m, k), b (k, n), out (m, n)
    """
    if (out.dtype not in cblas.GEMM_DTYPES or a.dtype != out.dtype or b.dtype != out.dtype
            or out.size == 0 or a.shape[1] == 0):
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return out
    if not out.flags.c_contiguous or a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
        raise ValueError(f"gemm needs a (m, k) @ (k, n) into a C-contiguous (m, n); got {a.shape} @ {b.shape} "
                         f"into {out.shape} (C-contiguous: {out.flags.c_contiguous})")
    a, trans_a = _blas_operand(a)
    b, trans_b = _blas_operand(b)
    beta = 1.0 if accumulate else 0.0
    m, n = out.shape
    k = a.shape[0] if trans_a else a.shape[1]
    if threads.threads() == 1 or threads.in_part():
        cblas.gemm_row_major(a, trans_a, b, trans_b, out, beta)
        return out

    def part(lo, hi):                  # rows lo:hi of op(a) @ op(b): a block of columns of a when it is transposed
        cblas.gemm_row_major(a[:, lo:hi] if trans_a else a[lo:hi], trans_a, b, trans_b, out[lo:hi], beta)

    with cblas.single_threaded_blas():                 # small products too: no BLAS thread wakes
        threads.run(part, threads.parts(m, n * k, GEMM_PART))
    return out


def column_sums(m):
    """``m.sum(axis=0)`` as a matrix-vector product (ones @ m): much faster than NumPy's reduction for narrow rows.

    The row of ones is kept in the buffer pool between calls.

    Shape: m (rows, n) -> (n,)
    """
    if m.dtype not in cblas.GEMM_DTYPES or not m.flags.c_contiguous:
        return m.sum(axis=0)
    ones = filled("blas.ones", (1, m.shape[0]), m.dtype, 1)
    return gemm(ones, m, np.empty((1, m.shape[1]), m.dtype))[0]


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
