"""One row-major ``gemm`` call into NumPy's own OpenBLAS, or into SciPy's BLAS where that is not found.

NumPy's wheels carry an OpenBLAS (``numpy.libs/libscipy_openblas64_*.so`` on
Linux) that ``np.matmul`` uses; SciPy's wheels carry another.  Calling both in
one training step means two pools of BLAS threads that spin against each other
on two cores, and SciPy's copy is often the older release.  ``gemm_row_major``
calls NumPy's ``cblas_sgemm``/``cblas_dgemm`` through ctypes when the library
and its symbols are found and a small product checks out; otherwise it calls
``scipy.linalg.blas`` (Fortran order, through the transposes).
``BACKEND`` says which was chosen: ``"numpy-openblas"`` or ``"scipy"``.
"""
import ctypes
import glob
import os

import numpy as np

GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _numpy_openblas():
    """{dtype: cblas gemm function} from the OpenBLAS bundled with NumPy, or None."""
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*"))):
        try:
            lib = ctypes.CDLL(path)
            functions = {np.dtype(np.float32): lib.scipy_cblas_sgemm64_, np.dtype(np.float64): lib.scipy_cblas_dgemm64_}
        except (OSError, AttributeError):
            continue
        int64, enum = ctypes.c_int64, ctypes.c_int
        for dtype, fn in functions.items():
            scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
            fn.argtypes = [enum, enum, enum, int64, int64, int64, scalar, ctypes.c_void_p, int64,
                           ctypes.c_void_p, int64, scalar, ctypes.c_void_p, int64]
            fn.restype = None
        return functions
    return None


def _call_numpy_openblas(fn, a, trans_a, b, trans_b, out, beta):
    m, n = out.shape
    k = a.shape[0] if trans_a else a.shape[1]
    fn(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k, 1.0,
       a.ctypes.data, max(1, a.shape[1]), b.ctypes.data, max(1, b.shape[1]), beta, out.ctypes.data, max(1, n))


def _call_scipy(a, trans_a, b, trans_b, out, beta):
    from scipy.linalg import blas
    fn = blas.sgemm if out.dtype == np.float32 else blas.dgemm
    # In Fortran order out is out.T (n, m) = op(b).T @ op(a).T, and a C-contiguous x is x.T in Fortran order.
    fn(1.0, b.T, a.T, beta=beta, c=out.T, overwrite_c=1, trans_a=int(trans_b), trans_b=int(trans_a))


def gemm_row_major(a, trans_a, b, trans_b, out, beta=0.0):
    """``out = op(a) @ op(b) + beta * out``, op(x) = x.T if trans_x else x; every array C-contiguous, dtypes equal.

    The caller checks the shapes (``minicnn.engine.blas.gemm`` does): nothing here does.

    Shape: op(a) (m, k), op(b) (k, n), out (m, n)
    """
    fn = None if _FUNCTIONS is None else _FUNCTIONS.get(out.dtype)
    if fn is None:
        _call_scipy(a, trans_a, b, trans_b, out, beta)
    else:
        _call_numpy_openblas(fn, a, trans_a, b, trans_b, out, beta)
    return out


def _checks_out(functions):
    """Whether NumPy's BLAS, called as above, gives np.matmul's product on a small case of every operand order."""
    rng = np.random.default_rng(0)
    for dtype, fn in functions.items():
        a, b = rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
        for trans_a in (False, True):
            for trans_b in (False, True):
                out = np.full((5, 4), 1.0, dtype)
                _call_numpy_openblas(fn, np.ascontiguousarray(a.T) if trans_a else a, trans_a,
                                     np.ascontiguousarray(b.T) if trans_b else b, trans_b, out, 1.0)
                if not np.allclose(out, a @ b + 1, rtol=1e-4, atol=1e-4):
                    return False
    return True


_FUNCTIONS = _numpy_openblas()
if _FUNCTIONS is not None and not _checks_out(_FUNCTIONS):
    _FUNCTIONS = None
BACKEND = "scipy" if _FUNCTIONS is None else "numpy-openblas"
