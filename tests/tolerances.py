"""Tolerances that follow the arithmetic, for comparing a floating-point result with a reference.

A sum of n terms computed in a precision with machine epsilon ``eps`` is off by at most about
``n * eps / 2 * sum(|terms|)`` in the worst case; BLAS kernels (blocked, FMA, threaded) and NumPy's
pairwise summation stay within a few ``eps * sum(|terms|)`` in practice, whatever the CPU or the
number of threads.  So the tolerance is taken from the size of what was summed, never from the size
of the result: a result that nearly cancels (a column sum close to 0) has a large relative error and
is still right.

    sum_tolerance(abs_sum, dtype)       a few eps * sum(|terms|), elementwise
    product_tolerance(a, b, k, dtype)   a few eps * k * max|a| * max|b|, for a product over k terms
    assert_close(actual, expected, tol) every |actual - expected| <= tol, with the worst element shown

Compare with a float64 reference, so the only rounding that counts is the one under test.
"""
import numpy as np

FACTOR = 4  # "a few": the observed error of blocked and pairwise sums stays well below this many eps


def eps(dtype):
    """Machine epsilon of a floating dtype (float16, float32, float64)."""
    return float(np.finfo(np.dtype(dtype)).eps)


def sum_tolerance(abs_sum, dtype, factor=FACTOR):
    """Allowed error of sums computed in ``dtype`` whose terms' absolute values add up to ``abs_sum``."""
    return factor * eps(dtype) * np.asarray(abs_sum, dtype=np.float64)


def product_tolerance(a, b, k, dtype=None, factor=FACTOR):
    """Allowed error of a product summing ``k`` terms a_i * b_i, computed in ``dtype`` (default: a's)."""
    a, b = np.asarray(a), np.asarray(b)
    top = float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0))
    return factor * eps(a.dtype if dtype is None else dtype) * k * top


def assert_close(actual, expected, tol, err_msg=""):
    """Assert ``|actual - expected| <= tol`` elementwise (``tol`` a scalar or broadcastable array)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{err_msg} shape {actual.shape}, expected {expected.shape}"
    err = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), err.shape)
    bad = ~(err <= tol)  # NaN counts as bad
    if bad.any():
        i = tuple(int(j) for j in np.unravel_index(np.argmax(np.where(bad, err - tol, -np.inf)), err.shape))
        raise AssertionError(
            f"{err_msg} {int(bad.sum())} of {err.size} elements off by more than the tolerance; worst at {i}: "
            f"{actual[i]!r} vs {expected[i]!r}, error {err[i]:.3g}, tolerance {tol[i]:.3g}")
