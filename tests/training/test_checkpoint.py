"""Checkpoints: round trip of every piece of state, atomic writes, and refusal of bad files."""
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minicnn import SGD, CosineLR, softmax_cross_entropy
from minicnn.nn.optim import Adam
from minicnn.training import architectures
from minicnn.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tests import crafted
from tests.nn.test_optim import IDS, OPTIMIZERS

SPEC = architectures.mnist_cnn(channels=(4, 8), hidden=16)
V1_FILE = Path(__file__).with_name("checkpoint_v1.npz")


def trained_state(seed=0, steps=3):
    """A small model, optimizer, schedule and rng after a few real steps (so velocities are non-zero)."""
    rng = np.random.default_rng(seed)
    model = architectures.build_model(SPEC, rng=rng)
    opt = SGD(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = CosineLR(opt, total_steps=20, warmup_steps=2)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    for _ in range(steps):
        _, dout = softmax_cross_entropy(model.forward(x), y)
        model.backward(dout)
        opt.step()
        sched.step()
    return model, opt, sched, rng


def fresh(seed=123):
    rng = np.random.default_rng(seed)
    model = architectures.build_model(SPEC, rng=rng)
    opt = SGD(model, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return model, opt, CosineLR(opt, total_steps=20, warmup_steps=2), rng


@pytest.fixture
def saved(tmp_path):
    model, opt, sched, rng = trained_state()
    path = save_checkpoint(tmp_path / "ck.npz", model=model, optimizer=opt, scheduler=sched, rng=rng,
                           epoch=2, step=opt.steps, extra={"note": "hello", "order": np.arange(5)})
    return path, model, opt, sched, rng


def test_round_trip_restores_weights_optimizer_schedule_and_rng(saved):
    path, model, opt, sched, rng = saved
    ck = load_checkpoint(path, architecture=SPEC)
    assert (ck.epoch, ck.step) == (2, 3)
    assert ck.extra_str("note") == "hello" and ck.extra["order"].tolist() == [0, 1, 2, 3, 4]
    model2, opt2, sched2, rng2 = fresh()
    ck.restore(model2, opt2, sched2, rng2)
    for (name, a, _), (_, b, _) in zip(model.parameters(), model2.parameters()):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert opt2.lr == opt.lr and opt2.steps == opt.steps and sorted(opt2.velocity) == sorted(opt.velocity)
    for name, v in opt.velocity.items():
        np.testing.assert_array_equal(opt2.velocity[name], v)
    assert (sched2.t, sched2.base_lr) == (sched.t, sched.base_lr)
    np.testing.assert_array_equal(rng2.random(5), rng.random(5))  # same stream from here on


def test_archive_holds_plain_arrays_with_weights_first(saved):
    path = saved[0]
    with np.load(path, allow_pickle=False) as npz:
        keys = list(npz.files)
        arrays = {k: npz[k] for k in keys}
    assert all(a.dtype.kind in "biufU" for a in arrays.values())
    first_conv = next(k for k in keys if k.endswith("W") and arrays[k].ndim == 4)
    assert first_conv == "model/0.W" and arrays[first_conv].shape == (4, 1, 3, 3)
    assert str(arrays["minicnn/format"]) == "minicnn-checkpoint"
    assert json.loads(str(arrays["minicnn/architecture"]))[0]["type"] == "Conv2D"
    assert "optim/velocity/0.W" in keys and "scheduler/t" in keys
    assert json.loads(str(arrays["rng"]))["bit_generator"] == "PCG64"


def test_failed_write_leaves_previous_checkpoint_intact(saved, monkeypatch):
    path, model, opt, sched, rng = saved
    before = path.read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model=model, optimizer=opt, epoch=3)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind
    monkeypatch.undo()
    assert load_checkpoint(path).epoch == 2


def test_interrupted_write_leaves_previous_checkpoint_intact(saved, monkeypatch):
    path, model, *_ = saved
    before = path.read_bytes()

    def ctrl_c(file, **arrays):
        file.write(b"PK")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=model, epoch=3)
    assert path.read_bytes() == before and len(list(path.parent.iterdir())) == 1


def test_truncated_file_is_refused(saved):
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted, truncated or not an npz"):
        load_checkpoint(path)


def test_flipped_byte_is_refused(saved):
    path = saved[0]
    with np.load(path) as npz:
        offset_hint = npz["model/7.W"].tobytes()[:16]  # a run of bytes inside the big dense weight
    data = bytearray(path.read_bytes())
    at = data.find(offset_hint) + 8
    assert at >= 8
    data[at] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_edited_weights_are_refused_by_the_digest(saved):
    """A well-formed archive whose weights were changed after saving does not match its recorded SHA-256."""
    path = saved[0]
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["model/0.W"] = arrays["model/0.W"] + np.float32(1e-3)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="do not match the SHA-256"):
        load_checkpoint(path)


def test_foreign_npz_and_other_files_are_refused(tmp_path):
    foreign = tmp_path / "weights.npz"
    np.savez(foreign, W=np.ones((2, 1, 3, 3)), b=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a minicnn checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "notes.npz"
    text.write_text("just some text")
    with pytest.raises(CheckpointError, match="not a readable minicnn checkpoint"):
        load_checkpoint(text)
    other = tmp_path / "other.npz"
    np.savez(other, **{"minicnn/format": np.array("something-else")})
    with pytest.raises(CheckpointError, match="not a minicnn checkpoint: format"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.npz")


class _Trap:
    """Unpickling this would create a file: proof that something was unpickled."""

    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (Path.touch, (Path(self.flag),))


def test_pickled_content_is_refused_without_unpickling(tmp_path):
    flag = tmp_path / "unpickled"
    path = tmp_path / "evil.npz"
    np.savez(path, **{"minicnn/format": np.array("minicnn-checkpoint"),
                      "model/0.W": np.array([_Trap(str(flag))], dtype=object)})
    with pytest.raises(CheckpointError, match="corrupted, truncated or not an npz"):
        load_checkpoint(path)
    assert not flag.exists()


def test_other_architecture_is_refused(saved):
    path = saved[0]
    other = architectures.mnist_cnn(channels=(8, 8), hidden=16)
    with pytest.raises(CheckpointError, match=r"different network:\n  checkpoint: Conv2D\(1->4"):
        load_checkpoint(path, architecture=other)
    ck = load_checkpoint(path)
    model = architectures.build_model(other, rng=np.random.default_rng(0))
    before = model.state_dict()
    with pytest.raises(CheckpointError, match="different network"):
        ck.restore(model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])  # untouched


def test_other_version_and_missing_entries_are_refused(saved):
    path = saved[0]
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(path, **{**arrays, "minicnn/version": np.array(99)})
    with pytest.raises(CheckpointError, match=r"version 99 minicnn checkpoint, from a newer minicnn; this one reads "
                                              r"versions 1 to 2: upgrade"):
        load_checkpoint(path)
    for bad, message in ((np.array(0), r"version 0 minicnn checkpoint; this minicnn reads versions 1 to 2"),
                         (np.array("two"), r"entry 'minicnn/version' must be an integer \(a 0-d array of at most 8 bytes\), got <U3")):
        np.savez(path, **{**arrays, "minicnn/version": bad})
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)
    del arrays["minicnn/digest"]
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=r"incomplete .* missing \['minicnn/digest'\]"):
        load_checkpoint(path)


def test_save_refuses_object_arrays_and_mismatched_architecture(tmp_path):
    model, opt, sched, rng = trained_state(steps=0)
    with pytest.raises(ValueError, match="numeric or string array"):
        save_checkpoint(tmp_path / "a.npz", model=model, extra={"bad": np.array([{}], dtype=object)})
    with pytest.raises(ValueError, match="does not describe the model"):
        save_checkpoint(tmp_path / "a.npz", model=model, architecture=architectures.mnist_cnn())
    assert not any(tmp_path.iterdir())


def test_checkpoint_is_a_valid_zip_of_npy_files(saved):
    """Readable with nothing but the standard library and NumPy's .npy reader."""
    with zipfile.ZipFile(saved[0]) as zf:
        names = zf.namelist()
        assert "model/0.W.npy" in names
        W = np.lib.format.read_array(io.BytesIO(zf.read("model/0.W.npy")), allow_pickle=False)
    np.testing.assert_array_equal(W, saved[1].layers[0].params["W"])


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_checkpoint_gets_the_permissions_open_would_give(tmp_path, umask):
    import os
    import stat

    model, *_ = trained_state(steps=0)
    old = os.umask(umask)
    try:
        path = save_checkpoint(tmp_path / "ck.npz", model=model)
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o666 & ~umask


def test_remove_stale_temporaries_deletes_only_what_killed_writes_left(tmp_path):
    from minicnn.utils.files import remove_stale_temporaries

    stale = [tmp_path / ".ck.npz.a1b2.tmp", tmp_path / ".ck.npz.zz.tmp"]
    keep = [tmp_path / "ck.npz", tmp_path / ".other.npz.a1.tmp", tmp_path / "ck.npz.tmp"]
    for p in stale + keep:
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path / "ck.npz") == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(keep)


def test_archive_larger_than_the_architecture_allows_is_refused_before_reading(tmp_path):
    from minicnn import Dense, Sequential
    spec = [{"type": "Dense", "in_features": 2, "out_features": 2}]
    model = Sequential([Dense(2, 2, rng=np.random.default_rng(0))])
    path = save_checkpoint(tmp_path / "c.npz", model=model, extra={"big": np.zeros(300_000)})   # 2.4 MB
    assert load_checkpoint(path).extra["big"].shape == (300_000,)    # no architecture: only the 2 GiB cap
    with pytest.raises(CheckpointError, match=r"c\.npz is not a readable .*declare \d+ bytes uncompressed, "
                                              r"more than the 1053376 allowed"):
        load_checkpoint(path, architecture=spec)


def test_fifo_is_refused_without_opening(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "c.npz")
    with pytest.raises(CheckpointError, match=r"c\.npz: expected a regular npz archive, got a FIFO"):
        load_checkpoint(tmp_path / "c.npz")


def test_a_version_1_checkpoint_still_loads_and_resumes():
    """checkpoint_v1.npz was written by minicnn 0.1 (checkpoint format 1: no buffers, no optim/type) with::

        SPEC = [{"type": "Flatten"}, {"type": "Dense", "in_features": 6, "out_features": 3}]
        rng = np.random.default_rng(7); model = architectures.build_model(SPEC, rng=rng)
        opt = SGD(model, lr=0.1, momentum=0.9); sched = CosineLR(opt, total_steps=10)
        x = rng.standard_normal((4, 1, 2, 3)).astype(np.float32); y = rng.integers(0, 3, 4)
        two steps of softmax_cross_entropy, backward, opt.step(), sched.step(), then
        save_checkpoint(path, model=model, optimizer=opt, scheduler=sched, rng=rng, epoch=1, step=2,
                        extra={"note": "written by minicnn 0.1.0, checkpoint format 1"})
    """
    spec = [{"type": "Flatten"}, {"type": "Dense", "in_features": 6, "out_features": 3}]
    with np.load(V1_FILE, allow_pickle=False) as npz:
        assert int(npz["minicnn/version"]) == 1 and "optim/type" not in npz.files
    ck = load_checkpoint(V1_FILE, architecture=spec)
    assert (ck.epoch, ck.step) == (1, 2) and ck.extra_str("note").startswith("written by minicnn 0.1.0")
    # the same run, again: the restored state is where those two steps lead (float32 rounding may differ by CPU)
    rng = np.random.default_rng(7)
    model = architectures.build_model(spec, rng=rng)
    opt = SGD(model, lr=0.1, momentum=0.9)
    sched = CosineLR(opt, total_steps=10)
    x, y = rng.standard_normal((4, 1, 2, 3)).astype(np.float32), rng.integers(0, 3, 4)
    for _ in range(2):
        _, dout = softmax_cross_entropy(model.forward(x), y)
        model.backward(dout)
        opt.step()
        sched.step()
    model2, rng2 = architectures.build_model(spec, rng=np.random.default_rng(0)), np.random.default_rng(0)
    opt2 = SGD(model2, lr=0.5, momentum=0.9)
    sched2 = CosineLR(opt2, total_steps=10)
    ck.restore(model2, opt2, sched2, rng2)
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(model2.state_dict()[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    for name, v in opt.velocity.items():
        np.testing.assert_allclose(opt2.velocity[name], v, rtol=1e-5, atol=1e-6, err_msg=name)
    assert opt2.steps == 2 and opt2.lr == opt.lr == sched.lr_at(2) and sched2.t == 2
    np.testing.assert_array_equal(rng2.random(3), rng.random(3))
    with pytest.raises(CheckpointError, match=r"checkpoint_v1.npz does not fit: optimizer state is from SGD, "
                                              r"this optimizer is Adam"):
        ck.restore(architectures.build_model(spec, rng=np.random.default_rng(0)), Adam(model2))


def test_buffers_round_trip_through_a_checkpoint(tmp_path):
    spec = architectures.fashion_cnn(channels=(2, 4), hidden=8)      # batch norms: running statistics
    model = architectures.build_model(spec, rng=np.random.default_rng(0))
    bn = model.layers[1]
    bn.buffers["running_mean"][:] = np.arange(2)
    bn.buffers["running_var"][:] = [3, 4]
    opt = SGD(model, lr=0.1, momentum=0.9)
    path = save_checkpoint(tmp_path / "ck.npz", model=model, optimizer=opt)
    with np.load(path, allow_pickle=False) as npz:
        assert int(npz["minicnn/version"]) == 2 and str(npz["optim/type"]) == "SGD"
        np.testing.assert_array_equal(npz["model/1.running_mean"], np.arange(2))
    model2 = architectures.build_model(spec, rng=np.random.default_rng(1))
    held = model2.layers[1].buffers["running_var"]
    load_checkpoint(path, architecture=spec).restore(model2, SGD(model2, lr=0.1, momentum=0.9))
    assert model2.layers[1].buffers["running_var"] is held
    np.testing.assert_array_equal(held, [3, 4])
    np.testing.assert_array_equal(model2.layers[1].buffers["running_mean"], np.arange(2))
    model3, opt3, _, _ = fresh()                    # a network without the batch norms: refused, nothing changed
    before = model3.state_dict()
    with pytest.raises(CheckpointError, match=r"was saved from a different network"):
        load_checkpoint(path).restore(model3, opt3)
    for name, value in model3.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert opt3.steps == 0 and not opt3.velocity


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=IDS)
def test_every_optimizers_state_round_trips_through_a_checkpoint(tmp_path, cls, kwargs):
    def build(seed):
        model = architectures.build_model(SPEC, rng=np.random.default_rng(seed))
        return model, cls(model, **kwargs)

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 6)

    def steps(model, opt, n):
        for _ in range(n):
            _, dout = softmax_cross_entropy(model.forward(x), y)
            model.backward(dout)
            opt.step()

    model, opt = build(1)
    steps(model, opt, 2)
    path = save_checkpoint(tmp_path / "ck.npz", model=model, optimizer=opt)
    steps(model, opt, 2)
    model2, opt2 = build(2)
    load_checkpoint(path, architecture=SPEC).restore(model2, opt2)
    assert opt2.steps == 2 and str(load_checkpoint(path).optim["type"]) == cls.__name__
    steps(model2, opt2, 2)
    for (name, p, _), (_, q, _) in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)


def test_a_batch_norm_network_round_trips_with_its_running_statistics(tmp_path):
    """A real BatchNorm2D/1D net: after training steps its running mean and variance are in the file, a fresh
    network gets them back, and in evaluation mode (where they are used) it gives the same outputs."""
    spec = [{"type": "Conv2D", "in_channels": 1, "out_channels": 3, "kernel_size": 3, "padding": "same",
             "bias": False},
            {"type": "BatchNorm2D", "num_features": 3}, {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Flatten"}, {"type": "Dense", "in_features": 3 * 4 * 4, "out_features": 6},
            {"type": "BatchNorm1D", "num_features": 6}, {"type": "Dense", "in_features": 6, "out_features": 4}]
    rng = np.random.default_rng(0)
    model = architectures.build_model(spec, rng=rng)
    opt = SGD(model, lr=0.1, momentum=0.9)
    x = (3 + 2 * rng.standard_normal((16, 1, 8, 8))).astype(np.float32)  # far from mean 0, variance 1
    y = rng.integers(0, 4, 16)
    model.train()
    for _ in range(3):
        _, dout = softmax_cross_entropy(model.forward(x), y)
        model.backward(dout)
        opt.step()
    running = dict(model.buffers())
    assert sorted(running) == ["1.running_mean", "1.running_var", "6.running_mean", "6.running_var"]
    assert not np.allclose(running["1.running_mean"], 0) and not np.allclose(running["1.running_var"], 1)
    path = save_checkpoint(tmp_path / "bn.npz", model=model, architecture=spec, optimizer=opt, rng=rng)
    ck = load_checkpoint(path, architecture=spec)
    for name, value in running.items():
        np.testing.assert_array_equal(ck.model[name], value, err_msg=name)
    model2 = architectures.build_model(spec, rng=np.random.default_rng(9))
    opt2 = SGD(model2, lr=0.1, momentum=0.9)
    ck.restore(model2, opt2)
    for name, value in model2.buffers():
        np.testing.assert_array_equal(value, running[name], err_msg=name)
    model.eval(), model2.eval()
    np.testing.assert_array_equal(model2.forward(x), model.forward(x))


# ------------------------------------------------- crafted files (issue 24): checked before anything is allocated

def _peak_bytes(fn):
    """(what fn raised, the peak bytes tracemalloc saw while it ran; NumPy reports its arrays to tracemalloc)."""
    import tracemalloc
    tracemalloc.start()
    try:
        fn()
    except Exception as e:      # noqa: BLE001 - the test looks at what came
        raised = e
    else:
        raised = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


def test_a_declared_network_bigger_than_the_file_is_refused_before_it_is_built(tmp_path):
    """The 1.6 MB file whose JSON declares Dense(30000, 30000): 3.6 GB if built; refused within 8 MB."""
    from minicnn.training.checkpoint import load_model
    path = crafted.huge_dense(tmp_path / "huge.npz")
    assert path.stat().st_size < 2_000_000
    for load in (lambda: load_checkpoint(path), lambda: load_model(path)):
        raised, peak = _peak_bytes(load)
        assert isinstance(raised, CheckpointError), raised
        assert re.search(r"huge\.npz: its architecture declares 900,030,000 weights and buffers, the file stores "
                         r"401,000: entry 'model/0\.W' holds shape \(400, 1000\), the architecture declares "
                         r"\(30000, 30000\)", str(raised)) and "\n" not in str(raised)
        assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB"


def test_a_zip_of_zeros_missing_entries_is_refused_before_anything_is_inflated(tmp_path):
    """A ~60 KB file inflating to 64 MB of zeros, without the metadata: refused within 2 MB, nothing inflated."""
    path = crafted.zeros_bomb(tmp_path / "bomb.npz", megabytes=64)
    assert path.stat().st_size < 200_000
    raised, peak = _peak_bytes(lambda: load_checkpoint(path))
    assert isinstance(raised, CheckpointError) and "incomplete minicnn checkpoint: missing" in str(raised), raised
    assert peak < 2_000_000, f"peak {peak / 1e6:.1f} MB"


def test_unused_entries_are_verified_a_block_at_a_time(tmp_path):
    """weights_only: a 32 MB optimizer entry is hashed (a changed byte is caught) but never held whole."""
    model, opt, sched, rng = trained_state()
    path = save_checkpoint(tmp_path / "ck.npz", model=model, optimizer=opt)
    crafted.replace(path, {"optim/junk": np.zeros(8 << 20, np.float32)})      # 32 MB, digest recomputed
    raised, peak = _peak_bytes(lambda: load_checkpoint(path, weights_only=True))
    assert raised is None and peak < 8_000_000, (raised, f"peak {peak / 1e6:.1f} MB")
    ck = load_checkpoint(path, weights_only=True)
    assert "junk" not in ck.optim and "velocity/0.W" not in ck.optim and set(ck.model) == set(model.state_dict())
    entries = crafted.read_entries(path)
    entries["optim/junk"][5_000_000] = 1.0          # one changed number, the recorded digest kept
    np.savez(path, **entries)
    with pytest.raises(CheckpointError, match="is corrupted: its contents do not match the SHA-256"):
        load_checkpoint(path, weights_only=True)


@pytest.mark.parametrize("case", ["nan", "inf", "int64", "shape", "missing", "unexpected", "velocity"])
def test_weights_that_do_not_fit_the_network_or_are_not_finite_floats_are_refused_naming_the_entry(tmp_path, case):
    model, opt, sched, rng = trained_state()
    path = save_checkpoint(tmp_path / "ck.npz", model=model, optimizer=opt, scheduler=sched, rng=rng)
    W = model.state_dict()["0.W"]
    change, message = {
        "nan": ({"model/3.b": np.full(8, np.nan, np.float32)}, r"entry 'model/3\.b' holds 8 NaN or infinite values out of 8"),
        "inf": ({"model/0.W": np.where(W > 0, np.inf, W)}, r"entry 'model/0\.W' holds \d+ NaN or infinite values out of 36"),
        "int64": ({"model/0.W": W.astype(np.int64)}, r"entry 'model/0\.W' holds int64; weights and buffers must be floating"),
        "shape": ({"model/0.W": np.zeros((3, 1, 3, 3), np.float32)},
                  r"declares 6,794 weights and buffers, the file stores 6,785: entry 'model/0\.W' holds shape "
                  r"\(3, 1, 3, 3\), the architecture declares \(4, 1, 3, 3\)"),
        "missing": ({"model/9.b": None}, r"declares 6,794 weights and buffers, the file stores 6,784: missing \['model/9\.b'\]"),
        "unexpected": ({"model/5.W": np.zeros(3, np.float32)}, r"unexpected \['model/5\.W'\]"),
        "velocity": ({"optim/velocity/0.W": np.zeros((4, 4), np.float32)},
                     r"entry 'optim/velocity/0\.W' \(float32 \(4, 4\)\) does not fit the network"),
    }[case]
    crafted.replace(path, change)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_weights_larger_than_a_block_are_checked_whole(tmp_path):
    from minicnn.training.checkpoint import load_model
    spec = [{"type": "Dense", "in_features": 1100, "out_features": 1000}]      # 1.1 M weights: two blocks
    path = save_checkpoint(tmp_path / "big.npz", model=architectures.build_model(spec, rng=np.random.default_rng(0)))
    model, _ = load_model(path)
    assert model.layers[0].params["W"].shape == (1100, 1000)
    W = crafted.read_entries(path)["model/0.W"]
    W[-1, -1] = np.inf
    crafted.replace(path, {"model/0.W": W})
    with pytest.raises(CheckpointError, match=r"'model/0\.W' holds 1 NaN or infinite values out of 1100000"):
        load_model(path)


@pytest.mark.parametrize("tool", ["export", "featuremaps", "studio", "inspect", "resume"])
def test_every_tool_refuses_the_crafted_network_in_one_line_with_little_memory(tmp_path, tool):
    """Each tool, as a user runs it, in a child capped at 2 GiB of address space: exit 2, one line, < 150 MB."""
    path = crafted.huge_dense(tmp_path / "huge.npz")
    argv = {"export": ["-m", "minicnn", "export", path, "--onnx", tmp_path / "m.onnx"],
            "featuremaps": ["-m", "minicnn", "featuremaps", path, "--out", tmp_path / "figs"],
            "studio": ["-m", "minicnn", "studio", path, "--no-browser", "--port", "0"],
            "inspect": ["-m", "minicnn", "inspect", path, "--out", tmp_path / "figs"],
            "resume": ["-m", "minicnn", "train", "--resume", path,
                       "--out", tmp_path / "run", "--data", tmp_path / "no-data"]}[tool]
    code, out, err, peak_mb = crafted.run_measured(argv, cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1, (code, err)
    assert "huge.npz: its architecture declares 900,030,000 weights and buffers, the file stores 401,000" in err
    assert peak_mb < 150, f"peak {peak_mb:.0f} MB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.npz"]     # a refused command leaves nothing
