"""gemm, column_sums and fill_rows against NumPy, with tolerances from the arithmetic."""
import numpy as np
import pytest

from minicnn.engine import cblas
from minicnn.engine.blas import column_sums, gemm
from tests.tolerances import assert_close, product_tolerance, sum_tolerance


@pytest.fixture(params=["chosen", "numpy-openblas", "scipy"], autouse=True)
def backend(request, monkeypatch):
    """Every test runs on the BLAS the engine chose (oneMKL with the mkl extra, else NumPy's OpenBLAS where
    found), on NumPy's OpenBLAS, and on SciPy's fallback."""
    if request.param == "scipy":
        monkeypatch.setattr(cblas, "_GEMM", None)
    elif request.param == "numpy-openblas":
        if not cblas.NUMPY_OPENBLAS:
            pytest.skip("NumPy's OpenBLAS was not found")
        monkeypatch.setattr(cblas, "_GEMM", cblas._FUNCTIONS)
    return request.param


def test_the_backend_is_named_and_numpys_openblas_is_found_beside_numpys_wheel():
    import glob
    import os
    bundled = glob.glob(os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs", "libscipy_openblas64_*"))
    if bundled:                     # NumPy's Linux wheels: the library is there, so it must have been taken
        assert cblas.NUMPY_OPENBLAS
    mkl = cblas._mkl_library() is not None and os.environ.get("MINICNN_BLAS", "").strip().lower() != "openblas"
    assert cblas.BACKEND == ("mkl" if mkl else "numpy-openblas" if cblas.NUMPY_OPENBLAS else "scipy")


def test_minicnn_blas_chooses_the_library_and_says_what_it_takes(monkeypatch):
    with pytest.raises(ValueError, match="MINICNN_BLAS must be 'mkl' or 'openblas'.*got 'atlas'"):
        cblas._choose("atlas")
    monkeypatch.setattr(cblas, "_mkl_library", lambda: None)                    # as without the mkl extra
    with pytest.raises(ImportError, match=r"no working oneMKL.*pip install 'minicnn-numpy\[mkl\]'"):
        cblas._choose("mkl")
    expected = "numpy-openblas" if cblas.NUMPY_OPENBLAS else "scipy"
    assert cblas._choose("")[1] == expected and cblas._choose("openblas")[1] == expected


@pytest.mark.skipif(cblas._mkl_library() is None, reason="oneMKL is not installed (the mkl extra)")
def test_onemkl_is_taken_when_installed_unless_openblas_is_asked_for():
    functions, name = cblas._choose("")
    assert name == "mkl" and cblas._checks_out(functions)
    assert cblas._choose("mkl")[1] == "mkl"
    assert cblas._choose("openblas")[1] == ("numpy-openblas" if cblas.NUMPY_OPENBLAS else "scipy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_row_major_every_transpose_with_beta(dtype):
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)
    start = rng.standard_normal((6, 5)).astype(dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for trans_a in (False, True):
        for trans_b in (False, True):
            out = start.copy()
            cblas.gemm_row_major(np.ascontiguousarray(a.T) if trans_a else a, trans_a,
                                 np.ascontiguousarray(b.T) if trans_b else b, trans_b, out, beta=1.0)
            assert_close(out, a64 @ b64 + start, product_tolerance(a, b, 4 + 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("a_order,b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
def test_gemm_matches_matmul_for_every_operand_order(dtype, a_order, b_order):
    rng = np.random.default_rng(11)
    a = np.asarray(rng.standard_normal((7, 5)), dtype=dtype, order=a_order)
    b = np.asarray(rng.standard_normal((5, 3)), dtype=dtype, order=b_order)
    out = np.full((7, 3), np.nan, dtype)
    assert gemm(a, b, out) is out
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_close(out, a64 @ b64, product_tolerance(a, b, 5))
    gemm(a, b, out, accumulate=True)                               # 2 x 5 terms of at most max|a| max|b|
    assert_close(out, 2 * (a64 @ b64), product_tolerance(a, b, 2 * 5))
    gemm(a[:, ::2], b[::2], out)                                   # non-contiguous operands are copied
    assert_close(out, a64[:, ::2] @ b64[::2], product_tolerance(a, b, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_block,b_block", [(True, False), (False, True), (True, True)])
def test_gemm_reads_a_block_of_columns_and_its_transpose_in_place(dtype, a_block, b_block, monkeypatch):
    # cols[:, lo:hi] (rows a whole row apart) and cols[:, lo:hi].T are read where they are, with BLAS's leading
    # dimension: copying them each call made a product over blocks of columns twice as slow.
    rng = np.random.default_rng(12)
    wide_a, wide_b = rng.standard_normal((6, 40)).astype(dtype), rng.standard_normal((5, 30)).astype(dtype)
    a = wide_a[:, 7:12] if a_block else np.ascontiguousarray(wide_a[:, 7:12])           # (6, 5), rows 40 apart
    b = wide_b[:, 3:8].T if b_block else np.ascontiguousarray(wide_b[:, 3:8].T)         # (5, 5), the transpose of one
    assert not (a_block and (a.flags.c_contiguous or a.flags.f_contiguous))
    assert not (b_block and (b.flags.c_contiguous or b.flags.f_contiguous))
    copies = []
    real = np.ascontiguousarray
    monkeypatch.setattr(np, "ascontiguousarray", lambda *args, **kwargs: copies.append(1) or real(*args, **kwargs))
    out = np.full((6, 5), np.nan, dtype)
    gemm(a, b, out)
    assert copies == []
    assert_close(out, a.astype(np.float64) @ b.astype(np.float64), product_tolerance(a, b, 5))


def test_gemm_and_column_sums_on_empty_and_narrow_shapes():
    out = np.ones((0, 3), np.float32)
    gemm(np.ones((0, 4), np.float32), np.ones((4, 3), np.float32), out)
    out = np.ones((2, 3), np.float32)
    gemm(np.ones((2, 0), np.float32), np.ones((0, 3), np.float32), out)
    np.testing.assert_array_equal(out, 0)
    m = np.random.default_rng(12).standard_normal((1000, 7)).astype(np.float32)
    m64 = m.astype(np.float64)
    # a column can nearly cancel (one sums to -0.53 from terms of size ~800): the error follows sum |m|
    assert_close(column_sums(m), m64.sum(axis=0), sum_tolerance(np.abs(m64).sum(axis=0), np.float32))
    assert_close(column_sums(m[:, ::2]), m64[:, ::2].sum(axis=0),
                 sum_tolerance(np.abs(m64[:, ::2]).sum(axis=0), np.float32))


@pytest.mark.parametrize("m, n", [(0, 3), (3, 0), (1, 5), (7, 16), (5000, 16), (257, 16), (300, 32), (3, 5000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fill_rows_writes_the_row_into_every_row(m, n, dtype):
    from minicnn.engine.blas import fill_rows
    row = np.random.default_rng(0).standard_normal(n).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    assert fill_rows(out, row) is out
    np.testing.assert_array_equal(out, np.broadcast_to(row, (m, n)))
    strided = np.full((m, 2 * n), np.nan, dtype)[:, ::2]                 # not contiguous: the plain broadcast
    np.testing.assert_array_equal(fill_rows(strided, row), np.broadcast_to(row, (m, n)))


@pytest.fixture
def two_engine_threads(monkeypatch):
    """Two engine threads, and every product big enough to be cut by the rows of its result."""
    from minicnn.engine import blas, threads
    previous = threads.threads()
    threads.set_threads(2)
    monkeypatch.setattr(blas, "GEMM_PART", 1)
    monkeypatch.setattr(threads, "MIN_PART", 1)
    yield
    threads.set_threads(previous)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_order,b_order", [("C", "C"), ("F", "C"), ("C", "F"), ("F", "F")])
def test_gemm_cut_by_rows_over_two_threads_matches_matmul(dtype, a_order, b_order, two_engine_threads):
    # A transposed a (F order) is cut into blocks of its columns, which BLAS reads in place (ld = its width).
    rng = np.random.default_rng(17)
    a = np.asarray(rng.standard_normal((9, 6)), dtype=dtype, order=a_order)
    b = np.asarray(rng.standard_normal((6, 4)), dtype=dtype, order=b_order)
    start = rng.standard_normal((9, 4)).astype(dtype)
    out = start.copy()
    gemm(a, b, out, accumulate=True)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert_close(out, a64 @ b64 + start, product_tolerance(a, b, 6 + 1))


def test_a_size_past_the_librarys_integers_goes_to_scipy(monkeypatch):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((7, 5)).astype(np.float32), rng.standard_normal((5, 6)).astype(np.float32)
    calls = []
    monkeypatch.setattr(cblas, "_call_scipy", lambda *args: calls.append(args) or np.matmul(args[0], args[2], out=args[4]))
    monkeypatch.setattr(cblas, "_GEMM_MAX_SIZE", 6)                      # as if 7 rows were past 32-bit sizes
    out = cblas.gemm_row_major(a, False, b, False, np.empty((7, 6), np.float32))
    assert len(calls) == 1 and np.array_equal(out, a @ b)
    monkeypatch.setattr(cblas, "_GEMM_MAX_SIZE", 7)
    cblas.gemm_row_major(a, False, b, False, out)
    assert len(calls) == (1 if cblas._GEMM is not None else 2)
