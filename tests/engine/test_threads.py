"""The engine's threads (minicnn.engine.threads): the parts cover the batch, and a split pass gives the whole pass's numbers."""
import os
import signal
import time
import unittest.mock
import warnings

import numpy as np
import pytest

from minicnn.engine import blas, cblas, threads
from minicnn.nn import BatchNorm2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from minicnn.nn.losses import softmax_cross_entropy
from minicnn.nn.optim import SGD


@pytest.fixture
def split_small_passes(monkeypatch):
    """Split every pass, however small, so that these small cases run on several threads."""
    monkeypatch.setattr(threads, "MIN_PART", 1)
    previous = threads.threads()
    yield
    threads.set_threads(previous)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 64, 257])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_parts_cover_the_rows_once_in_order(n, count, split_small_passes):
    threads.set_threads(count)
    parts = threads.parts(n)
    assert [lo for lo, _ in parts][0] == 0 and parts[-1][1] == n
    assert all(hi == lo_next for (_, hi), (lo_next, _) in zip(parts, parts[1:]))
    assert len(parts) == max(1, min(count, n))


def test_small_passes_stay_whole():
    previous = threads.threads()
    try:
        threads.set_threads(2)
        assert threads.parts(10, size_per_row=1) == [(0, 10)]
        assert len(threads.parts(256, size_per_row=threads.MIN_PART)) == 2
    finally:
        threads.set_threads(previous)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_threads_refuses_what_is_not_a_count(bad):
    with pytest.raises(ValueError, match="at least 1"):
        threads.set_threads(bad)


def test_run_returns_results_in_order_and_raises_a_parts_error(split_small_passes):
    threads.set_threads(2)
    assert threads.run(lambda lo, hi: (lo, hi), [(0, 2), (2, 5)]) == [(0, 2), (2, 5)]

    def fail(lo, hi):
        if lo:
            raise RuntimeError("part two failed")
    with pytest.raises(RuntimeError, match="part two"):
        threads.run(fail, [(0, 1), (1, 2)])


def _network(rng, dtype, batch_norm):
    return Sequential([Conv2D(1, 4, 3, padding=1, rng=rng, dtype=dtype)] + ([BatchNorm2D(4, dtype=dtype)] if batch_norm else [])
                      + [ReLU(), MaxPool2D(2), Conv2D(4, 6, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2D(2),
                         Flatten(), Dense(6 * 3 * 3, 5, rng=rng, dtype=dtype)])


def _three_steps(count, dtype=np.float32, batch_norm=False):
    threads.set_threads(count)
    rng = np.random.default_rng(3)
    model = _network(rng, dtype, batch_norm)
    optimizer = SGD(model, 0.1, momentum=0.9)
    x, y = rng.standard_normal((9, 1, 12, 12)).astype(dtype), rng.integers(0, 5, 9)
    outputs = []
    for _ in range(3):
        logits = model.forward(x)
        model.backward(softmax_cross_entropy(logits, y)[1])
        outputs.append(logits.copy())
        optimizer.step()
    return outputs, {name: p.copy() for name, p in model.state_dict().items()}


def test_element_wise_passes_split_over_threads_give_the_same_numbers(split_small_passes, monkeypatch):
    # ReLU, max-pool and the copies are split over the examples; no sum changes order, so nothing changes.
    # (The products are kept whole here: BLAS may round a block of rows differently from the whole.)
    monkeypatch.setattr(blas, "GEMM_PART", 1 << 60)
    whole, split = _three_steps(1), _three_steps(3)
    for a, b in zip(whole[0], split[0]):
        np.testing.assert_array_equal(a, b)
    assert whole[1].keys() == split[1].keys()
    for name in whole[1]:
        np.testing.assert_array_equal(whole[1][name], split[1][name], err_msg=name)


def test_products_split_over_threads_agree_to_rounding(split_small_passes, monkeypatch):
    # Every product cut into blocks of rows: the same sums of products, each rounded once more or less
    # differently by BLAS's kernels. In float64, far below 1e-10 after three steps.
    monkeypatch.setattr(blas, "GEMM_PART", 1)
    whole, split = _three_steps(1, np.float64), _three_steps(3, np.float64)
    for a, b in zip(whole[0], split[0]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    for name in whole[1]:
        np.testing.assert_allclose(whole[1][name], split[1][name], rtol=0, atol=1e-10, err_msg=name)


def test_sums_split_over_threads_agree_to_rounding(split_small_passes):
    # Batch norm's per-channel sums add each thread's share: another order of the same terms. In float64
    # the sums of ~1,300 terms of size ~1 differ by ~1e-13, and three steps keep that far below 1e-10.
    whole, split = _three_steps(1, np.float64, True), _three_steps(3, np.float64, True)
    for a, b in zip(whole[0], split[0]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    for name in whole[1]:
        np.testing.assert_allclose(whole[1][name], split[1][name], rtol=0, atol=1e-10, err_msg=name)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_splits_on_a_pool_of_its_own(split_small_passes):
    threads.set_threads(2)
    assert threads.run(lambda lo, hi: hi - lo, [(0, 1), (1, 3)]) == [1, 2]     # the parent's pool now exists
    with warnings.catch_warnings():                # Python 3.12 warns about fork beside threads: the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:                                   # the child: the parent's worker thread is not here
        code = 0 if threads.run(lambda lo, hi: hi - lo, [(0, 2), (2, 5)]) == [2, 3] else 1
        os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung waiting for a worker thread it does not have")


needs_numpy_openblas = pytest.mark.skipif(not cblas.NUMPY_OPENBLAS,
                                          reason="the BLAS thread count is set on NumPy's OpenBLAS only")


@needs_numpy_openblas
def test_blas_runs_on_one_thread_while_the_engine_splits_and_gets_its_count_back(split_small_passes, monkeypatch):
    threads.set_threads(2)
    monkeypatch.setattr(blas, "GEMM_PART", 1)
    seen = []
    real = cblas.gemm_row_major

    def spy(*args, **kwargs):
        seen.append(cblas.blas_threads())
        return real(*args, **kwargs)

    before = cblas.set_blas_threads(2)
    try:
        with unittest.mock.patch.object(cblas, "gemm_row_major", spy):
            blas.gemm(np.ones((8, 3), np.float32), np.ones((3, 5), np.float32), np.empty((8, 5), np.float32))
        assert seen and set(seen) == {1}, f"BLAS thread counts seen inside the engine's products: {seen}"
        assert cblas.blas_threads() == 2 and threads.threads() == 2
    finally:
        cblas.set_blas_threads(before)


@needs_numpy_openblas
def test_single_threaded_scopes_nest_and_overlap():
    before = cblas.set_blas_threads(2)
    try:
        first, second = cblas.single_threaded_blas(), cblas.single_threaded_blas()
        first.__enter__()
        second.__enter__()              # another caller (say, another Python thread) opens one too
        first.__exit__(None, None, None)
        assert cblas.blas_threads() == 1, "the count came back while a scope was still open"
        second.__exit__(None, None, None)
        assert cblas.blas_threads() == 2
    finally:
        cblas.set_blas_threads(before)


def test_batch_parts_keep_at_least_min_examples_per_part():
    previous = threads.threads()
    try:
        threads.set_threads(2)
        assert threads.batch_parts(64) == [(0, 32), (32, 64)]
        assert threads.batch_parts(2 * threads.MIN_EXAMPLES - 1) == [(0, 2 * threads.MIN_EXAMPLES - 1)]
        m = threads.MAX_EXAMPLES
        assert threads.batch_parts(4 * m) == [(0, m), (m, 2 * m), (2 * m, 3 * m), (3 * m, 4 * m)]
        threads.set_threads(1)
        assert threads.batch_parts(m) == [(0, m)]
        assert threads.batch_parts(2 * m) == [(0, m), (m, 2 * m)]          # parts the one thread runs in turn
        assert threads.batch_parts(2 * m, in_turn=False) == [(0, 2 * m)]
    finally:
        threads.set_threads(previous)


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 31, 32, 128, 129, 256, 257, 300, 1000])
def test_batch_parts_cut_each_threads_share_into_equal_numbers_of_parts_of_at_most_max_examples(count, n):
    previous = threads.threads()
    try:
        threads.set_threads(count)
        got = threads.batch_parts(n)
        assert got[0][0] == 0 and got[-1][1] == n and all(b == c for (_, b), (c, _) in zip(got, got[1:]))
        shares = threads.batch_parts(n, in_turn=False)
        assert len(shares) <= count and len(got) % len(shares) == 0      # the same number of parts per share
        if len(shares) > 1:
            assert min(hi - lo for lo, hi in shares) >= threads.MIN_EXAMPLES
        assert max(hi - lo for lo, hi in got) <= max(threads.MAX_EXAMPLES, threads.MIN_EXAMPLES * 2)
        per_share = len(got) // len(shares)
        assert per_share == 1 or max(hi - lo for lo, hi in got) > threads.MAX_EXAMPLES // 2     # the fewest parts
    finally:
        threads.set_threads(previous)


def test_each_thread_runs_its_run_of_parts_in_turn_and_the_results_come_in_order():
    import threading
    previous = threads.threads()
    try:
        threads.set_threads(2)
        seen = []

        def part(k, lo, hi):
            seen.append((k, threading.get_ident()))
            return k, lo, hi, threads.in_part()

        ranges = [(0, 2), (2, 4), (4, 6), (6, 8)]
        assert threads.run_batch_parts(part, ranges) == [(k, lo, hi, True) for k, (lo, hi) in enumerate(ranges)]
        where = dict(seen)
        assert where[0] == where[1] == threading.get_ident() and where[2] == where[3] != where[0]
        assert [k for k, _ in seen if where[k] == where[2]] == [2, 3]                   # one after the other
        threads.set_threads(1)
        seen.clear()
        assert [r[0] for r in threads.run_batch_parts(part, ranges)] == [0, 1, 2, 3]
        assert {ident for _, ident in seen} == {threading.get_ident()}
        with pytest.raises(ValueError, match="at most 1 .one per thread., got 4"):
            threads.run_batch_parts(part, ranges, together=True)
    finally:
        threads.set_threads(previous)


@pytest.mark.parametrize("count", [1, 2])
def test_last_first_runs_each_threads_parts_from_its_last_and_the_results_come_in_order(count):
    import threading
    previous = threads.threads()
    try:
        threads.set_threads(count)
        seen = []

        def part(k, lo, hi):
            seen.append((k, threading.get_ident()))
            return k, lo, hi

        ranges = [(0, 2), (2, 4), (4, 6), (6, 8)]
        assert threads.run_batch_parts(part, ranges, last_first=True) == [(k, *r) for k, r in enumerate(ranges)]
        by_thread = {}
        for k, ident in seen:
            by_thread.setdefault(ident, []).append(k)
        runs = sorted(by_thread.values())
        assert runs == ([[3, 2, 1, 0]] if count == 1 else [[1, 0], [3, 2]])
        seen.clear()
        assert threads.run_parts_here(part, ranges, last_first=True) == [(k, *r) for k, r in enumerate(ranges)]
        assert [k for k, _ in seen] == [3, 2, 1, 0]
        seen.clear()
        assert threads.run_parts_here(part, ranges) == [(k, *r) for k, r in enumerate(ranges)]
        assert [k for k, _ in seen] == [0, 1, 2, 3]
    finally:
        threads.set_threads(previous)


def test_run_batch_parts_gives_each_part_its_index_and_the_callers_context():
    import contextvars
    seen = contextvars.ContextVar("seen", default="not set")
    previous = threads.threads()
    try:
        threads.set_threads(2)
        token = seen.set("the caller's")
        got = threads.run_batch_parts(lambda k, lo, hi: (k, lo, hi, seen.get(), threads.in_part()), [(0, 3), (3, 5)])
        seen.reset(token)
        assert got == [(0, 0, 3, "the caller's", True), (1, 3, 5, "the caller's", True)]
    finally:
        threads.set_threads(previous)


def test_in_chunks_covers_the_images_once_with_longer_chunks_in_a_part_beside_another_thread():
    def chunks(numbers_per_image):
        seen = []
        threads.in_chunks(lambda a, b: seen.append((a, b)), 3, 1000, numbers_per_image)
        return seen

    def check(seen, step):
        assert seen[0][0] == 3 and seen[-1][1] == 1000
        assert all(b == a_next for (_, b), (a_next, _) in zip(seen, seen[1:]))
        assert all(b - a == step for a, b in seen[:-1]) and 0 < seen[-1][1] - seen[-1][0] <= step

    per_image = 1000
    check(chunks(per_image), threads.CHUNK_NUMBERS // per_image)
    previous = threads.threads()
    try:
        threads.set_threads(2)
        inside = threads.run_batch_parts(lambda k, lo, hi: chunks(per_image), [(0, 1), (1, 2)])
    finally:
        threads.set_threads(previous)
    for seen in inside:                            # another thread runs beside a part: fewer, longer calls
        check(seen, threads.CHUNK_NUMBERS_IN_PART // per_image)
    assert threads.CHUNK_NUMBERS_IN_PART > threads.CHUNK_NUMBERS
    try:
        threads.set_threads(1)                     # parts one thread runs in turn: nobody beside them
        in_turn = threads.run_batch_parts(lambda k, lo, hi: chunks(per_image), [(0, 1), (1, 2)])
    finally:
        threads.set_threads(previous)
    here = threads.run_parts_here(lambda k, lo, hi: chunks(per_image), [(0, 1), (1, 2)])   # beside processes
    for seen in in_turn + here:
        check(seen, threads.CHUNK_NUMBERS // per_image)


def test_sum_over_parts_adds_the_parts_shares_in_order_and_is_the_identity_elsewhere():
    assert threads.sum_over_parts(np.array([1.0]), 3) == (np.array([1.0]), 3)      # no split: the shares
    previous = threads.threads()
    try:
        threads.set_threads(3)

        def part(k, lo, hi):
            first = threads.sum_over_parts(np.full(2, float(k)), hi - lo)           # parts of 3, 2 and 4 examples
            second = threads.sum_over_parts(np.array([10.0 ** k]))                  # the slots serve sum after sum
            return first[0].tolist(), first[1], second[0].tolist()

        got = threads.run_batch_parts(part, [(0, 3), (3, 5), (5, 9)], together=True)
        assert got == [([3.0, 3.0], 9, [111.0])] * 3
    finally:
        threads.set_threads(previous)


def test_many_sums_in_a_row_never_mix_one_sum_with_the_next():
    previous = threads.threads()
    try:
        threads.set_threads(2)

        def part(k, lo, hi):
            totals = []
            for i in range(300):
                if k == 1 and i % 7 == 0:
                    time.sleep(0.0005)                         # one part lags now and then
                totals.append(threads.sum_over_parts(i * 10 + k)[0])
            return totals

        a, b = threads.run_batch_parts(part, [(0, 1), (1, 2)], together=True)
        assert a == b == [i * 20 + 1 for i in range(300)]
    finally:
        threads.set_threads(previous)


@pytest.mark.parametrize("failing", [0, 1])
def test_a_part_that_fails_releases_the_parts_that_wait_for_its_share(failing):
    import threading
    previous = threads.threads()
    outcome = []

    def part(k, lo, hi):
        if k == failing:
            raise ValueError(f"part {k} failed")
        return threads.sum_over_parts(1.0)

    def call():
        try:
            threads.run_batch_parts(part, [(0, 1), (1, 2)], together=True)
        except Exception as error:                   # noqa: BLE001 - which error comes first depends on the part
            outcome.append(error)

    try:
        threads.set_threads(2)
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(timeout=20)
        assert not caller.is_alive(), "the parts still wait for each other"
        assert len(outcome) == 1 and isinstance(outcome[0], (ValueError, threading.BrokenBarrierError))
        # ... and the next batch whose parts add their sums runs as usual
        assert threads.run_batch_parts(lambda k, lo, hi: threads.sum_over_parts(k + 1)[0], [(0, 1), (1, 2)],
                                       together=True) == [3, 3]
    finally:
        threads.set_threads(previous)


def test_level2_cache_bytes_reads_sysfs_and_the_chunk_follows_it(tmp_path):
    for index, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                                 ("2", "Unified", "2048K"), ("3", "Unified", "105M")]):
        entry = tmp_path / f"index{index}"
        entry.mkdir()
        for name, text in (("level", level), ("type", kind), ("size", size)):
            (entry / name).write_text(text + "\n")
    assert threads.level2_cache_bytes(tmp_path) == 2 << 20
    assert threads.level2_cache_bytes(tmp_path / "missing") is None
    assert [threads._size_bytes(t) for t in ("512K", "1M", "640")] == [512 << 10, 1 << 20, 640]
    l2 = threads.level2_cache_bytes()
    assert threads.CHUNK_NUMBERS == max(1 << 17, (l2 or 0) // 8)       # half the L2 in float32, at least 512 KiB

