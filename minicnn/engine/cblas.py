"""One row-major ``gemm`` call into NumPy's own OpenBLAS, or into SciPy's BLAS where that is not found.

NumPy's wheels carry an OpenBLAS (``numpy.libs/libscipy_openblas64_*.so`` on
Linux) that ``np.matmul`` uses; SciPy's wheels carry another.  Calling both in
one training step means two pools of BLAS threads that spin against each other
on two cores, and SciPy's copy is often the older release.  ``gemm_row_major``
calls NumPy's ``cblas_sgemm``/``cblas_dgemm`` through ctypes when the library
and its symbols are found and a small product checks out; otherwise it calls
``scipy.linalg.blas`` (Fortran order, through the transposes).
``BACKEND`` says which was chosen: ``"numpy-openblas"`` or ``"scipy"``.

With the optional ``mkl`` extra (``pip install "minicnn-numpy[mkl]"``: Intel's oneMKL
from PyPI, in ``<prefix>/lib``), the products go to oneMKL's ``cblas_sgemm`` instead,
in its sequential layer (the engine's own threads share the work, as they do with
OpenBLAS on one thread): on a Sapphire Rapids Xeon it runs the convolutions' thin
products about 1.4x as fast (docs/performance.md).  ``BACKEND`` is then ``"mkl"``.
``MINICNN_BLAS=openblas`` keeps NumPy's OpenBLAS even with oneMKL installed (on
other CPUs, measure: oneMKL is tuned for Intel's), and ``MINICNN_BLAS=mkl`` makes a
missing oneMKL an error instead of a quiet fallback.  NumPy's own products
(``np.matmul``) never change library.
"""
import ctypes
import glob
import os
import sys
import threading

import numpy as np

GEMM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _numpy_openblas_library():
    """The OpenBLAS bundled with NumPy's wheel (``numpy.libs/libscipy_openblas64_*``), loaded, or None."""
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _declare_gemm(functions, size):
    """Give each cblas ``?gemm`` of {dtype: function} its C signature, sizes and row strides of ctypes type ``size``."""
    enum = ctypes.c_int
    for dtype, fn in functions.items():
        scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
        fn.argtypes = [enum, enum, enum, size, size, size, scalar, ctypes.c_void_p, size,
                       ctypes.c_void_p, size, scalar, ctypes.c_void_p, size]
        fn.restype = None


def _numpy_openblas(lib):
    """({dtype: cblas gemm function}, (get, set) of its thread count) from that library, or None."""
    try:
        functions = {np.dtype(np.float32): lib.scipy_cblas_sgemm64_, np.dtype(np.float64): lib.scipy_cblas_dgemm64_}
        get, put = lib.scipy_openblas_get_num_threads64_, lib.scipy_openblas_set_num_threads64_
    except AttributeError:
        return None
    _declare_gemm(functions, ctypes.c_int64)                 # the ILP64 interface: 64-bit sizes
    get.argtypes, get.restype = [], ctypes.c_int
    put.argtypes, put.restype = [ctypes.c_int], None
    return functions, (get, put)


_MKL_SEQUENTIAL = 1             # MKL_THREADING_SEQUENTIAL, for MKL_Set_Threading_Layer


def _mkl_library():
    """oneMKL's single dynamic library from the ``mkl`` wheel (``<prefix>/lib/libmkl_rt.so*``), loaded, or None.

    Only that wheel's copy, in this environment's own prefix: a NumPy built on oneMKL (conda's) shares its
    library with the whole process, and its threading is not ours to change.
    """
    for path in sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _mkl(lib):
    """{dtype: cblas gemm function} of oneMKL (its LP64 interface: 32-bit sizes) in its sequential layer, or None."""
    try:
        functions = {np.dtype(np.float32): lib.cblas_sgemm, np.dtype(np.float64): lib.cblas_dgemm}
        layer = lib.MKL_Set_Threading_Layer
    except AttributeError:
        return None
    layer.argtypes, layer.restype = [ctypes.c_int], ctypes.c_int
    layer(_MKL_SEQUENTIAL)                                   # before any other call into the library
    _declare_gemm(functions, ctypes.c_int)
    return functions


def blas_threads():
    """How many threads NumPy's OpenBLAS runs a product on (1 if that library is not found)."""
    return 1 if _THREAD_COUNT is None else max(1, int(_THREAD_COUNT[0]()))


def set_blas_threads(n):
    """Set NumPy's OpenBLAS thread count (for every caller); returns the previous one.  No-op without that library."""
    if _THREAD_COUNT is None:
        return 1
    previous = blas_threads()
    if n != previous:
        _THREAD_COUNT[1](n)
    return previous


class single_threaded_blas:
    """``with single_threaded_blas():`` NumPy's OpenBLAS runs each call on its calling thread, then gets its count back.

    For products the engine shares out between its own threads (``minicnn.engine.threads``).  The scopes
    nest and may overlap between Python threads: the count drops to 1 when the first one opens and comes
    back when the last one closes.
    """
    _lock = threading.Lock()
    _open = 0
    _previous = 1

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._open == 0:
                cls._previous = set_blas_threads(1)
            cls._open += 1

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._open -= 1
            if cls._open == 0:
                set_blas_threads(cls._previous)


def _leading(m):
    """The row stride of a row-major 2-D operand, in numbers (BLAS's ld, at least 1).

    A C-contiguous array's is its width; a block of columns of one (``a[:, lo:hi]``) keeps the whole
    array's row stride, so BLAS reads it in place.
    """
    if m.shape[0] > 1:
        return max(1, m.strides[0] // m.itemsize)
    return max(1, m.shape[1])


def _call_cblas(fn, a, trans_a, b, trans_b, out, beta):
    m, n = out.shape
    k = a.shape[0] if trans_a else a.shape[1]
    fn(_ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k, 1.0,
       a.ctypes.data, _leading(a), b.ctypes.data, _leading(b), beta, out.ctypes.data, _leading(out))


def _call_scipy(a, trans_a, b, trans_b, out, beta):
    from scipy.linalg import blas
    fn = blas.sgemm if out.dtype == np.float32 else blas.dgemm
    # In Fortran order out is out.T (n, m) = op(b).T @ op(a).T, and a C-contiguous x is x.T in Fortran order.
    fn(1.0, b.T, a.T, beta=beta, c=out.T, overwrite_c=1, trans_a=int(trans_b), trans_b=int(trans_a))


def gemm_row_major(a, trans_a, b, trans_b, out, beta=0.0):
    """``out = op(a) @ op(b) + beta * out``, op(x) = x.T if trans_x else x; dtypes equal.

    ``a``, ``b`` and ``out`` are row-major with unit column stride (C-contiguous, or a block of
    columns of a C-contiguous array); the caller checks that and the shapes
    (``minicnn.engine.blas.gemm`` does): nothing here does.

    Shape: op(a) (m, k), op(b) (k, n), out (m, n)
    """
    fn = None if _GEMM is None else _GEMM.get(out.dtype)
    if (fn is not None and _GEMM_MAX_SIZE < 2**63 - 1
            and max(out.shape + a.shape + b.shape + (_leading(a), _leading(b), _leading(out))) > _GEMM_MAX_SIZE):
        fn = None                                            # a size past the library's integers: SciPy's BLAS
    if fn is None:
        _call_scipy(a, trans_a, b, trans_b, out, beta)
    else:
        _call_cblas(fn, a, trans_a, b, trans_b, out, beta)
    return out


def _checks_out(functions):
    """Whether a cblas gemm, called as above, gives np.matmul's product on a small case of every operand order."""
    rng = np.random.default_rng(0)
    for dtype, fn in functions.items():
        a, b = rng.standard_normal((5, 3)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
        for trans_a in (False, True):
            for trans_b in (False, True):
                out = np.full((5, 4), 1.0, dtype)
                _call_cblas(fn, np.ascontiguousarray(a.T) if trans_a else a, trans_a,
                            np.ascontiguousarray(b.T) if trans_b else b, trans_b, out, 1.0)
                if not np.allclose(out, a @ b + 1, rtol=1e-4, atol=1e-4):
                    return False
    return True


def _choose(wanted):
    """(gemm functions or None, backend name) for ``MINICNN_BLAS`` = ``wanted`` ("", "mkl" or "openblas")."""
    if wanted not in ("", "mkl", "openblas"):
        raise ValueError(f"MINICNN_BLAS must be 'mkl' or 'openblas' (or unset), got {wanted!r}")
    if wanted != "openblas":
        library = _mkl_library()
        functions = _mkl(library) if library is not None else None
        if functions is not None and _checks_out(functions):
            return functions, "mkl"
        if wanted == "mkl":
            raise ImportError(f"MINICNN_BLAS=mkl, but no working oneMKL in {os.path.join(sys.prefix, 'lib')}: "
                              "install it with pip install 'minicnn-numpy[mkl]', or unset MINICNN_BLAS")
    if _FUNCTIONS is not None:
        return _FUNCTIONS, "numpy-openblas"
    return None, "scipy"


_LIBRARY = _numpy_openblas_library()
_FUNCTIONS, _THREAD_COUNT = (_numpy_openblas(_LIBRARY) if _LIBRARY is not None else None) or (None, None)
if _FUNCTIONS is not None and not _checks_out(_FUNCTIONS):
    _FUNCTIONS = _THREAD_COUNT = None
NUMPY_OPENBLAS = _FUNCTIONS is not None           # NumPy's OpenBLAS was found (its thread count is the engine's default)
_GEMM, BACKEND = _choose(os.environ.get("MINICNN_BLAS", "").strip().lower())
# The largest size or row stride the chosen library takes: oneMKL's LP64 interface has 32-bit integers.
_GEMM_MAX_SIZE = 2**31 - 1 if BACKEND == "mkl" else 2**63 - 1
