"""Worker processes (minicnn.engine.workers): messages of arrays, the shared arena, sums over parts, ending well."""
import os
import signal
import time

import numpy as np
import pytest

from minicnn.engine import workers

pytestmark = pytest.mark.skipif(not workers.available(), reason="worker processes need Linux's fork")


@pytest.mark.parametrize("big", [False, True], ids=["one frame", "a frame per array"])
def test_a_message_carries_a_header_and_arrays_of_any_dtype_and_shape(big):
    from multiprocessing.connection import Pipe
    a, b = Pipe()
    arrays = [np.arange(12, dtype=np.float32).reshape(3, 4), np.zeros((0, 5)), np.array(2.5),
              np.arange(6, dtype=np.int64).reshape(2, 3).T,            # not contiguous: sent as its values
              np.arange(3, dtype=np.int8), np.arange(5, dtype=np.float64)]
    if big:                                                            # past PACKED_BYTES: a frame each
        arrays.append(np.arange(workers.PACKED_BYTES // 4 + 1, dtype=np.float32))
    workers.send(a, {"do": "x", "n": 3}, arrays)
    header, got = workers.recv(b, spin=1e-3)
    assert header == {"do": "x", "n": 3}
    assert len(got) == len(arrays)
    for sent, came in zip(arrays, got):
        assert came.dtype == sent.dtype and came.shape == sent.shape and came.flags.writeable
        assert came.flags.aligned
        np.testing.assert_array_equal(came, sent)
    got[0][...] = -1                                                   # each array its own numbers
    for sent, came in zip(arrays[1:], got[1:]):
        np.testing.assert_array_equal(came, sent)
    workers.send(a, {"error": "ValueError: no"})
    with pytest.raises(workers.WorkerError, match="ValueError: no"):
        workers.recv(b)


def _doubler(team, k, conn):
    def handle(header, arrays):
        team.arena["out"][:] = 2 * team.arena["in"] + k
        return {"do": "done", "pid": os.getpid()}, [arrays[0] * 10]
    return handle


def test_a_team_forks_workers_that_share_the_arena_and_answer_messages():
    team = workers.Team(2, [("in", (3,), np.float32), ("out", (3,), np.float32)], _doubler)
    try:
        assert team.count == 2 and len(team.pids) == 1
        team.arena["in"][:] = [1, 2, 3]
        workers.send(team.conns[0], {"do": "go"}, [np.ones(2)])
        header, (reply,) = workers.recv(team.conns[0], workers.SPIN)
        assert header["pid"] == team.pids[0] != os.getpid()
        np.testing.assert_array_equal(reply, [10, 10])
        np.testing.assert_array_equal(team.arena["out"], [3, 5, 7])      # written by the worker
    finally:
        team.close()
    assert team.closed and team.pids == []


def _failing(team, k, conn):
    def handle(header, arrays):
        raise KeyError("no such thing")
    return handle


def test_a_failing_handler_is_an_error_in_the_caller_and_the_worker_stays_ready():
    team = workers.Team(2, [], _failing)
    try:
        for _ in range(2):
            workers.send(team.conns[0], {"do": "go"})
            with pytest.raises(workers.WorkerError, match="KeyError"):
                workers.recv(team.conns[0])
    finally:
        team.close()


def _gone(pid, seconds=10.0):
    """Whether process ``pid`` (our child) has ended, waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        time.sleep(0.01)
    return False


def test_a_worker_ignores_ctrl_c_keeps_no_inherited_file_and_leaves_when_its_socket_closes():
    read, write = os.pipe()                        # a file of the caller's, open at the fork
    team = workers.Team(2, [("in", (3,), np.float32), ("out", (3,), np.float32)], _doubler)
    pid = team.pids[0]
    try:
        os.close(write)
        assert os.read(read, 1) == b""             # end of file: the worker did not keep the write end
        os.kill(pid, signal.SIGINT)
        workers.send(team.conns[0], {"do": "go"}, [np.ones(1)])
        assert workers.recv(team.conns[0])[0]["do"] == "done"
        team.conns[0].close()                       # the caller's end closes: the worker leaves by itself
        assert _gone(pid)
    finally:
        os.close(read)
        team.pids.clear()
        team.close()


def test_a_team_that_is_dropped_ends_its_workers():
    team = workers.Team(3, [], _failing)
    pids = list(team.pids)
    assert len(pids) == 2
    del team
    import gc
    gc.collect()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _adder(team, k, conn):
    sums = workers.WorkerSums(team, k, conn)

    def handle(header, arrays):
        if header["do"] == "fail":
            raise ValueError("no share from this one")
        got = []
        for _ in range(header.get("rounds", 1)):      # several sums in a row, as a batch norm's forward makes
            got.append(sums.sum(k, [arrays[0], float(k)]))
        return {"do": "done"}, [a for totals in got for a in totals]
    return handle


@pytest.fixture(params=[True, False], ids=["shared board", "socket"])
def new_team(request, monkeypatch):
    """``new_team(count, make_handler)``: a team whose sums and answers go through the shared board (on a machine
    that has one) or the socket; every team made is closed at the end of the test."""
    monkeypatch.setattr(workers, "_board", request.param and workers._board)
    teams = []

    def make(count, make_handler):
        teams.append(workers.Team(count, [], make_handler))
        assert (teams[-1].board is not None) == (request.param and workers._board)
        return teams[-1]
    yield make
    for team in teams:
        team.close()


@pytest.mark.parametrize("size", [5, workers.BOARD_SLOT // 4 + 1], ids=["small", "past a slot"])
def test_sums_over_parts_add_in_part_order_and_every_part_gets_the_same_numbers(new_team, size):
    team = new_team(3, _adder)
    rng = np.random.default_rng(0)
    for rounds in (1, 3):
        shares = [rng.standard_normal(size).astype(np.float32) * 10.0 ** rng.integers(-3, 4, size)
                  for _ in range(3)]
        for k in (1, 2):
            workers.send(team.conns[k - 1], {"do": "sum", "rounds": rounds}, [shares[k]])
        hub = workers.HubSums(team, 3)
        mine = [hub.sum(0, [shares[0], 0.0]) for _ in range(rounds)]
        theirs = [workers.recv(conn, workers.SPIN)[1] for conn in team.conns]
        expected = (shares[0] + shares[1]) + shares[2]
        for r in range(rounds):
            np.testing.assert_array_equal(mine[r][0], expected)
            assert float(mine[r][1]) == 3.0
            for got in theirs:
                np.testing.assert_array_equal(got[2 * r], mine[r][0])
                assert got[2 * r + 1] == mine[r][1]


def test_a_worker_that_fails_before_its_share_is_an_error_not_a_wait(new_team):
    team = new_team(2, _adder)
    workers.send(team.conns[0], {"do": "fail"})
    with pytest.raises(workers.WorkerError, match="no share from this one"):
        workers.HubSums(team, 2).sum(0, [np.ones(3)])


def _twice(team, k, conn):
    def handle(header, arrays):
        if header["do"] == "fail":
            raise ValueError("nothing to double")
        return team.answer(conn, k, [a * 2 for a in arrays])
    return handle


@pytest.mark.parametrize("size", [5, workers.BOARD_SLOT // 4 + 1], ids=["small", "past a slot"])
def test_a_workers_answer_comes_on_the_board_or_the_socket_and_an_error_is_an_error(new_team, size):
    team = new_team(3, _twice)
    rng = np.random.default_rng(1)
    for _ in range(3):                              # answers in a row: each one its own
        sent = [rng.standard_normal(size).astype(np.float32) for _ in (1, 2)]
        for k in (1, 2):
            workers.send(team.conns[k - 1], {"do": "double"}, [sent[k - 1], np.arange(k)])
        for k in (1, 2):
            got = team.answer_of(k)
            np.testing.assert_array_equal(got[0], sent[k - 1] * 2)
            np.testing.assert_array_equal(got[1], np.arange(k) * 2)
    workers.send(team.conns[0], {"do": "fail"})
    with pytest.raises(workers.WorkerError, match="nothing to double"):
        team.answer_of(1)
    workers.send(team.conns[0], {"do": "double"}, [np.ones(2)])   # the worker stays ready
    np.testing.assert_array_equal(team.answer_of(1)[0], [2.0, 2.0])


def test_without_fork_the_split_says_so():
    previous = workers.available()
    workers.set_processes(False)
    try:
        assert not workers.available()
        with pytest.raises(RuntimeError, match="fork"):
            workers.Team(2, [], _failing)
        with pytest.raises(ValueError, match="True or False"):
            workers.set_processes("yes")
    finally:
        workers.set_processes(previous)
