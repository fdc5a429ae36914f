"""``minicnn train`` (minicnn/experiments/train_mnist.py) end to end on small MNIST subsets: accuracy, outputs, Ctrl-C,
resume, faults; and the script experiments/train_mnist.py that calls it."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import SGD, CosineLR, evaluate
from minicnn.data import augment
from minicnn.data.mnist import load_mnist, normalize
from minicnn.experiments import train_mnist
from minicnn.training import architectures
from minicnn.training.checkpoint import load_checkpoint, save_checkpoint
from minicnn.utils import plotting
from tests import crafted

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "experiments" / "train_mnist.py"
TRAIN = ["-m", "minicnn", "train"]          # the command, as a user starts it
SMALL = ["--limit-train", "600", "--limit-test", "200", "--epochs", "3", "--batch-size", "32", "--no-progress"]


@pytest.fixture(scope="module")
def short_run(mnist_root, tmp_path_factory):
    """The issue's short training: 2,000 training images, 1 epoch (125 steps), 1,000 test images."""
    out = tmp_path_factory.mktemp("short")
    code = train_mnist.main(["--data", str(mnist_root), "--limit-train", "2000", "--limit-test", "1000",
                             "--epochs", "1", "--batch-size", "16", "--max-shift", "0", "--warmup", "0.1",
                             "--out", str(out), "--no-progress"])
    return code, out


def test_short_run_reaches_a_sane_accuracy_and_writes_its_outputs(short_run, mnist_root):
    code, out = short_run
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.85, metrics["history"]
    assert metrics["epochs"] == 1 and len(metrics["history"]) == 1 and metrics["train_seconds"] > 0
    assert metrics["test_images"] == 1000 and metrics["train_images"] == 2000
    kernels = metrics["kernels"]
    assert len(kernels) == 16 and all(-1 <= k["similarity"] <= 1 and k["match"].startswith("sobel") for k in kernels)
    assert (out / "kernels.png").exists() == plotting.have_matplotlib()
    # the checkpoint holds the final weights: evaluating them gives the reported accuracy
    ck = load_checkpoint(out / "checkpoint.npz", architecture=architectures.mnist_cnn())
    assert ck.epoch == 1
    model = architectures.build_model(ck.architecture)
    ck.restore(model)
    _, _, x_test, y_test = load_mnist(mnist_root, download=False)
    x, y = normalize(x_test[:1000]), y_test[:1000].astype(np.int64)
    assert evaluate(model, x, y)[1] == metrics["test_accuracy_as_they_are"]
    assert metrics["test_time"] == "shifts"            # the MNIST recipe's: the mean over one-pixel shifts
    _, accuracy = evaluate(model, x, y, copies=lambda xb: augment.test_time_copies(xb, "shifts"))
    assert accuracy == metrics["test_accuracy"]
    np.testing.assert_array_equal(np.array(kernels[0]["kernel"]), ck.model["0.W"][0, 0].astype(np.float64).round(6))


def test_inspect_command_reads_the_checkpoint(short_run, capsys):
    from minicnn.edges import inspect_kernels as inspect_cmd

    assert inspect_cmd.main([str(short_run[1] / "checkpoint.npz")]) == 0
    assert "model/0.W" in capsys.readouterr().out


def test_ctrl_c_saves_and_resume_ends_bit_identical(mnist_root, tmp_path):
    # Bit-identical holds for the same BLAS thread setting on the same machine: all three runs are
    # subprocesses with one environment (the command picks its thread count from it), never the test's own.
    full, cut = tmp_path / "full", tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def script(*args, **kwargs):
        return subprocess.Popen([sys.executable, *TRAIN, *args, "--data", str(mnist_root)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO, **kwargs)

    def finish(proc):
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output

    finish(script(*SMALL, "--out", str(full)))
    # Ctrl-C reaches the script even when this test runs with SIGINT ignored (a background job)
    proc = script(*SMALL, "--out", str(cut), preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("epoch  1/3"):
            proc.send_signal(signal.SIGINT)  # during epoch 2
            break
    rest, _ = proc.communicate(timeout=120)
    output = "".join(lines) + rest
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    assert f"resume with: minicnn train --resume {cut / 'checkpoint.npz'}" in output
    stopped = load_checkpoint(cut / "checkpoint.npz")
    assert stopped.epoch in (1, 2)
    finish(script("--resume", str(cut / "checkpoint.npz"), "--no-progress"))
    a, b = load_checkpoint(full / "checkpoint.npz"), load_checkpoint(cut / "checkpoint.npz")
    assert a.epoch == b.epoch == 3 and a.step == b.step
    for name, value in a.model.items():
        np.testing.assert_array_equal(b.model[name], value, err_msg=name)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (full, cut))
    assert ma["test_accuracy"] == mb["test_accuracy"]
    assert [r["test_accuracy"] for r in ma["history"]] == [r["test_accuracy"] for r in mb["history"]]


@pytest.fixture
def any_lr(monkeypatch):
    """Lift the --lr range (0, 10], which keeps users from divergence, to reach the divergence paths."""
    monkeypatch.setitem(train_mnist.NUMBER_TYPES, "lr", float)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_loss_stops_with_a_clear_message(mnist_root, tmp_path, capsys, any_lr):
    code = train_mnist.main(["--data", str(mnist_root), "--limit-train", "320", "--limit-test", "100", "--epochs", "1",
                             "--lr", "1e9", "--warmup", "0", "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(r"training stopped: loss became (nan|inf) at epoch 1, step \d+ \(learning rate [0-9.e+]+\)", err), err
    assert f"last good checkpoint (0 epochs done) is kept in {tmp_path / 'checkpoint.npz'}" in err
    ck = load_checkpoint(tmp_path / "checkpoint.npz")
    assert ck.epoch == 0 and all(np.isfinite(v).all() for v in ck.model.values())


def test_resume_refuses_bad_checkpoints_and_changed_options(short_run, mnist_root, tmp_path, capsys):
    good = short_run[1] / "checkpoint.npz"

    def resume(path, *more):
        code = train_mnist.main(["--resume", str(path), "--data", str(mnist_root), "--out", str(tmp_path / "o"),
                                 "--no-progress", *more])
        return code, capsys.readouterr().err

    code, err = resume(good, "--lr", "0.3")
    assert code == 2 and "drop --lr 0.3 (the run used 0.05)" in err

    corrupted = tmp_path / "corrupted.npz"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    code, err = resume(corrupted)
    assert code == 2 and "corrupted" in err

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, W=np.zeros((16, 1, 3, 3), np.float32))
    code, err = resume(foreign)
    assert code == 2 and "not a minicnn checkpoint" in err

    # a genuine minicnn checkpoint of another network, carrying this run's configuration
    ck = load_checkpoint(good)
    other = architectures.build_model(architectures.mnist_cnn(channels=(8, 16)), rng=np.random.default_rng(0))
    wrong = save_checkpoint(tmp_path / "wrong.npz", model=other, rng=np.random.default_rng(0), epoch=0,
                            extra={"config": ck.extra_str("config"), "history": "[]"})
    code, err = resume(wrong)
    assert code == 2 and "different network" in err and "Conv2D(1->8, 3x3)" in err

    bare = save_checkpoint(tmp_path / "bare.npz", model=other)
    code, err = resume(bare)
    assert code == 2 and "holds no training configuration" in err
    assert not (tmp_path / "o").exists()


TINY = ["--limit-train", "64", "--limit-test", "64", "--batch-size", "32", "--channels", "2,4", "--hidden", "8",
        "--no-progress"]


def tiny(mnist_root, out, *more):
    return train_mnist.main(TINY + ["--data", str(mnist_root), "--out", str(out), *more])


def test_a_new_run_refuses_a_folder_holding_another_run(mnist_root, tmp_path, capsys):
    assert tiny(mnist_root, tmp_path, "--epochs", "2") == 0
    before = (tmp_path / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert tiny(mnist_root, tmp_path, "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} already holds a run" in err and f"--resume {tmp_path / 'checkpoint.npz'}" in err
    assert "--overwrite" in err and (tmp_path / "checkpoint.npz").read_bytes() == before
    assert "--overwrite" in train_mnist.build_parser().format_help()
    assert tiny(mnist_root, tmp_path, "--epochs", "1", "--overwrite") == 0
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 1
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 1


def test_temporary_files_of_a_killed_run_are_removed_at_start(mnist_root, tmp_path, capsys):
    stale = tmp_path / ".checkpoint.npz.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert tiny(mnist_root, tmp_path, "--epochs", "1") == 0
    assert not stale.exists() and f"removed {stale}" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--limit-train", "-5"), ("--limit-test", "-1"), ("--epochs", "0"),
                                           ("--batch-size", "0"), ("--seed", "-1")])
def test_unusable_numbers_are_refused_with_what_was_expected(option, value, capsys):
    with pytest.raises(SystemExit) as info:
        train_mnist.parse_args([option, value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and re.search(rf"argument {option}: expected a whole number (of at least|from) 1", err) \
        or f"argument {option}: expected a whole number of at least 0" in err, err


def test_out_pointing_at_a_file_and_a_damaged_data_set_are_one_line_errors(mnist_root, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert tiny(mnist_root, afile) == 2
    assert capsys.readouterr().err == f"error: --out {afile} is a file, not a folder; give a folder for the run's outputs\n"
    data = tmp_path / "mnist"
    data.mkdir()
    for name in os.listdir(mnist_root):
        (data / name).write_bytes((Path(mnist_root) / name).read_bytes())
    damaged = data / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(damaged.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    code = train_mnist.main(TINY + ["--data", str(data), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: cannot read MNIST from --data {data}:") and "t10k-labels" in err


def test_a_full_disk_is_an_error_and_the_previous_checkpoint_survives(mnist_root, tmp_path, monkeypatch, capsys):
    import errno

    import minicnn.training.checkpoint

    real_savez, calls = np.savez, []

    def savez(f, **arrays):
        calls.append(1)
        if len(calls) == 3:  # the checkpoint after epoch 2 (after those of the start and of epoch 1)
            f.write(b"PK\x03\x04 partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_savez(f, **arrays)

    monkeypatch.setattr(minicnn.training.checkpoint.np, "savez", savez)
    assert tiny(mnist_root, tmp_path, "--epochs", "3") == 2
    err = capsys.readouterr().err
    assert (f"error: No space left on device: {tmp_path / 'checkpoint.npz'} (the disk is full: free some space"
            in err and "Traceback" not in err), err
    assert f"the checkpoint in {tmp_path / 'checkpoint.npz'} is intact (1 epochs done)" in err
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("epochs", ["1", "3"])
def test_divergence_in_the_last_step_is_not_success(mnist_root, tmp_path, capsys, epochs, any_lr):
    code = train_mnist.main(["--data", str(mnist_root), "--limit-train", "64", "--limit-test", "64", "--batch-size",
                             "64", "--epochs", epochs, "--lr", "1e30", "--out", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "the test loss became nan after the last step in epoch 1" in err, err
    assert f"last good checkpoint (0 epochs done) is kept in {tmp_path / 'checkpoint.npz'}" in err
    assert not (tmp_path / "metrics.json").exists()


def test_ctrl_c_before_the_first_checkpoint_says_there_is_none(mnist_root, tmp_path, monkeypatch, capsys):
    import minicnn.training.runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # a Ctrl-C landing while the first checkpoint is being written

    monkeypatch.setattr(minicnn.training.runner, "save_checkpoint", interrupted)
    assert tiny(mnist_root, tmp_path, "--epochs", "1") == 130
    err = capsys.readouterr().err
    assert "no checkpoint was saved yet, so there is nothing to resume" in err and "resume with" not in err


def test_sigterm_saves_exits_143_and_resume_continues_with_sigint_ignored(mnist_root, tmp_path):
    """As started by `nohup ... &`: SIGINT is ignored and stays so; SIGTERM still stops after a step and saves."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    args = TINY + ["--epochs", "30", "--data", str(mnist_root), "--out", str(tmp_path)]
    proc = subprocess.Popen([sys.executable, *TRAIN, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=REPO,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("epoch  1/30"):
            proc.send_signal(signal.SIGINT)  # ignored
        if line.startswith("epoch  2/30"):
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=120)
    output = "".join(lines) + rest
    assert proc.returncode == 143, output
    assert "Traceback" not in output and "Ctrl-C:" not in output and "SIGTERM: stopping after this step" in output
    stopped = load_checkpoint(tmp_path / "checkpoint.npz")
    assert 2 <= stopped.epoch < 30
    assert train_mnist.main(["--resume", str(tmp_path / "checkpoint.npz"), "--data", str(mnist_root),
                             "--no-progress"]) == 0
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 30


def test_output_cut_short_by_head_ends_quietly(mnist_root, tmp_path):
    proc = subprocess.Popen([sys.executable, *TRAIN, *TINY, "--epochs", "1", "--data", str(mnist_root),
                             "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().startswith(b"minicnn MNIST")
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.decode()) == (0, "")


# ------------------------------------------------------------ --dataset fashion-mnist

# The MNIST run as it was before data sets had recipes (README: 99.43%); it must not change.
OLD_MNIST_DEFAULTS = {"dataset": "mnist", "epochs": 8, "batch_size": 64, "lr": 0.05, "momentum": 0.9,
                      "weight_decay": 5e-4, "warmup": 0.3, "max_shift": 2, "channels": "16,32", "hidden": 128,
                      "seed": 0, "limit_train": None, "limit_test": None}
OLD_MNIST_NETWORK = [
    {"type": "Conv2D", "in_channels": 1, "out_channels": 16, "kernel_size": 3, "padding": "same"},
    {"type": "MaxPool2D", "kernel_size": 2}, {"type": "ReLU"},
    {"type": "Conv2D", "in_channels": 16, "out_channels": 32, "kernel_size": 3, "padding": "same"},
    {"type": "MaxPool2D", "kernel_size": 2}, {"type": "ReLU"}, {"type": "Flatten"},
    {"type": "Dense", "in_features": 1568, "out_features": 128}, {"type": "ReLU"},
    {"type": "Dense", "in_features": 128, "out_features": 10}]


def recipe_args(argv):
    args, _ = train_mnist.parse_args(argv)
    train_mnist.fill_recipe(args)
    return args


def test_the_mnist_defaults_are_those_of_before_the_recipes():
    args = recipe_args([])
    assert {k: getattr(args, k) for k in OLD_MNIST_DEFAULTS} == OLD_MNIST_DEFAULTS
    assert (args.architecture, args.dropout, args.flip) == ("mnist_cnn", 0.0, False)
    spec = train_mnist.network_spec(args, (16, 32))
    assert architectures.to_json(spec) == architectures.to_json(OLD_MNIST_NETWORK)


def test_the_fashion_recipe_builds_its_network_and_every_option_overrides_it():
    args = recipe_args(["--dataset", "fashion-mnist"])
    assert (args.architecture, args.channels, args.dropout, args.flip) == ("fashion_cnn", "24,48,64", 0.0, True)
    assert (args.lr, args.epochs, args.batch_size, args.max_shift, args.erase) == (0.1, 15, 64, 2, 0.5)
    assert (args.label_smoothing, args.test_time) == (0.1, "flips+shifts")
    model = architectures.build_model(train_mnist.network_spec(args, (24, 48, 64)), rng=np.random.default_rng(0))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "BatchNorm2D", "MaxPool2D", "ReLU", "Conv2D", "BatchNorm2D", "MaxPool2D", "ReLU",
                     "Conv2D", "BatchNorm2D", "ReLU", "Flatten", "Dense", "ReLU", "Dense"]
    assert all("b" not in model.layers[i].params for i in (0, 4, 8))  # the batch norms shift
    # 3x3x24 + 2x24 + 3x3x24x48 + 2x48 + 3x3x48x64 + 2x64 + (64x7x7)x128 + 128 + 128x10 + 10
    assert model.num_params() == 216 + 48 + 10368 + 96 + 27648 + 128 + 401536 + 1290 == 441330
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    args = recipe_args(["--dataset", "fashion-mnist", "--architecture", "mnist_cnn", "--dropout", "0.25", "--no-flip",
                        "--epochs", "3", "--lr", "0.05", "--channels", "16,32"])
    assert (args.architecture, args.dropout, args.flip, args.epochs, args.lr) == ("mnist_cnn", 0.25, False, 3, 0.05)
    assert [type(layer).__name__ for layer in architectures.build_model(
        train_mnist.network_spec(args, (16, 32))).layers][-2:] == ["Dropout", "Dense"]
    assert recipe_args(["--flip"]).flip is True
    help_text = " ".join(train_mnist.build_parser().format_help().split())
    assert "(default: mnist_cnn for mnist, fashion_cnn for fashion-mnist)" in help_text
    assert "(default: off for mnist, on for fashion-mnist)" in help_text
    assert "(default: shifts for mnist, flips+shifts for fashion-mnist)" in help_text.replace("fashion- mnist", "fashion-mnist")
    assert "(default: 0.0 for mnist, 0.5 for fashion-mnist)" in help_text.replace("fashion- mnist", "fashion-mnist")
    assert recipe_args(["--dataset", "fashion-mnist", "--channels", "24,48"]).channels == "24,48"   # two convs


def test_three_channel_counts_are_for_fashion_cnn_only(capsys):
    with pytest.raises(SystemExit) as info:
        train_mnist.main(["--channels", "16,32,64", "--out", "/nonexistent/never-made"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--channels 16,32,64 with --architecture mnist_cnn: mnist_cnn takes two channel counts" in err
    with pytest.raises(SystemExit):
        train_mnist.parse_args(["--channels", "16,32,64,8"])
    assert "expected two or three whole numbers of at least 1" in capsys.readouterr().err


def test_dropout_must_be_a_probability(capsys):
    with pytest.raises(SystemExit):
        train_mnist.parse_args(["--dropout", "1.5"])
    assert "expected a number in [0, 1), got '1.5'" in capsys.readouterr().err


def test_augmentation_flips_clothing_never_digits():
    from minicnn.data.augment import random_erase, random_flip, random_shift

    assert train_mnist.RECIPES["mnist"]["flip"] is False and train_mnist.RECIPES["fashion-mnist"]["flip"] is True
    x = np.random.default_rng(0).random((16, 1, 6, 6)).astype(np.float32)
    digits, clothes = train_mnist.make_augment(2, False), train_mnist.make_augment(2, True)
    np.testing.assert_array_equal(digits(x, np.random.default_rng(1)), random_shift(x, np.random.default_rng(1), 2))
    g = np.random.default_rng(1)
    np.testing.assert_array_equal(clothes(x, np.random.default_rng(1)), random_flip(random_shift(x, g, 2), g))
    assert train_mnist.make_augment(0, False) is None
    erasing = train_mnist.make_augment(2, True, 0.5)                      # shifts, flips, then erased rectangles
    g = np.random.default_rng(1)
    np.testing.assert_array_equal(erasing(x, np.random.default_rng(1)),
                                  random_erase(random_flip(random_shift(x, g, 2), g), g, 0.5))
    assert train_mnist.make_augment(0, False, 0.5) is not None


def test_the_fashion_recipe_runs_and_resumes_bit_identical(fashion_root, tmp_path, monkeypatch, capsys):
    """Its batch norms' running statistics (and dropout masks) continue exactly after a Ctrl-C."""
    run = ["--dataset", "fashion-mnist", "--dropout", "0.5", "--data", str(fashion_root), "--limit-train", "256", "--limit-test", "128",
           "--epochs", "1", "--no-progress"]
    for picture in ("plot_kernel_report", "plot_training_curves"):  # matplotlib would take most of the time,
        monkeypatch.setattr(train_mnist, picture, lambda *args, **kwargs: None)
    fashion = train_mnist.DATASETS["fashion-mnist"]           # and reading and verifying the files 3 times
    arrays = fashion.load(fashion_root, download=False)
    monkeypatch.setitem(train_mnist.DATASETS, "fashion-mnist", fashion._replace(load=lambda root, **kw: arrays))
    assert train_mnist.main(run + ["--out", str(tmp_path / "full")]) == 0
    assert "BatchNorm2D(24)" in capsys.readouterr().out
    real = train_mnist.train_resumable

    def ctrl_c_after_2_of_4_steps(*args, **kwargs):
        def hook(epoch, step):
            if (epoch, step) == (1, 2):
                os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs, on_step=hook)

    found = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even in a background job
    try:
        monkeypatch.setattr(train_mnist, "train_resumable", ctrl_c_after_2_of_4_steps)
        assert train_mnist.main(run + ["--out", str(tmp_path / "cut")]) == 130
    finally:
        signal.signal(signal.SIGINT, found)
    monkeypatch.setattr(train_mnist, "train_resumable", real)
    stopped = load_checkpoint(tmp_path / "cut" / "checkpoint.npz")
    assert (stopped.epoch, int(stopped.extra["epoch_step"])) == (0, 2)
    assert train_mnist.main(["--resume", str(tmp_path / "cut" / "checkpoint.npz"), "--data", str(fashion_root),
                             "--no-progress"]) == 0
    a, b = (load_checkpoint(tmp_path / d / "checkpoint.npz") for d in ("full", "cut"))
    assert {"model/1.running_mean", "model/5.running_var"} <= {f"model/{k}" for k in a.model}
    assert a.epoch == b.epoch == 1 and a.model.keys() == b.model.keys()
    for name, value in a.model.items():
        np.testing.assert_array_equal(b.model[name], value, err_msg=name)
    assert not np.array_equal(a.model["1.running_var"], np.ones(24, np.float32))  # the statistics were updated


def test_fashion_run_records_its_data_set_and_refuses_to_resume_on_mnist(fashion_root, mnist_root, tmp_path, capsys):
    out = tmp_path / "fashion"
    assert train_mnist.main(TINY + ["--dataset", "fashion-mnist", "--data", str(fashion_root), "--out", str(out),
                                    "--epochs", "1"]) == 0
    assert "minicnn Fashion-MNIST: 64 training / 64 test images" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["dataset"] == "fashion-mnist"
    ck = load_checkpoint(out / "checkpoint.npz")
    assert json.loads(ck.extra_str("config"))["dataset"] == "fashion-mnist"
    code = train_mnist.main(["--resume", str(out / "checkpoint.npz"), "--dataset", "mnist", "--data", str(mnist_root),
                             "--epochs", "1", "--no-progress"])
    assert code == 2 and "drop --dataset mnist (the run used fashion-mnist)" in capsys.readouterr().err
    # its data folder must hold Fashion-MNIST: MNIST's files are refused by their digests
    code = train_mnist.main(["--resume", str(out / "checkpoint.npz"), "--data", str(mnist_root), "--no-progress"])
    assert code == 2 and "content does not match Fashion-MNIST" in capsys.readouterr().err


def test_a_checkpoint_from_before_the_dataset_option_resumes_as_mnist(mnist_root, tmp_path, capsys):
    assert tiny(mnist_root, tmp_path, "--epochs", "1") == 0
    ck = load_checkpoint(tmp_path / "checkpoint.npz")
    config = json.loads(ck.extra_str("config"))
    del config["dataset"]
    model = architectures.build_model(ck.architecture)
    ck.restore(model)
    old = save_checkpoint(tmp_path / "old.npz", model=model, rng=np.random.default_rng(0), epoch=1,
                          extra={"config": json.dumps(config), "history": ck.extra_str("history")})
    capsys.readouterr()
    code = train_mnist.main(["--resume", str(old), "--dataset", "fashion-mnist", "--no-progress"])
    assert code == 2 and "drop --dataset fashion-mnist (the run used mnist)" in capsys.readouterr().err


def test_a_fashion_checkpoint_from_before_the_recipes_resumes_with_the_mnist_network_and_flips(
        fashion_root, tmp_path, capsys):
    """Runs saved before recipes named their network have no architecture, dropout or flip in their config."""
    out = tmp_path / "old"
    assert train_mnist.main(TINY + ["--dataset", "fashion-mnist", "--data", str(fashion_root), "--out", str(out),
                                    "--epochs", "1", "--architecture", "mnist_cnn", "--flip"]) == 0
    ck = load_checkpoint(out / "checkpoint.npz")
    config = json.loads(ck.extra_str("config"))
    for key in ("architecture", "dropout", "flip"):
        del config[key]
    model = architectures.build_model(ck.architecture)
    optimizer, rng = SGD(model, lr=0.05, momentum=0.9, nesterov=True), np.random.default_rng(0)
    scheduler = CosineLR(optimizer, total_steps=2, warmup_steps=1)
    ck.restore(model, optimizer, scheduler, rng)
    save_checkpoint(out / "checkpoint.npz", model=model, optimizer=optimizer, scheduler=scheduler, rng=rng,
                    epoch=ck.epoch, step=ck.step, extra={**ck.extra, "config": json.dumps(config)})
    capsys.readouterr()
    assert train_mnist.main(["--resume", str(out / "checkpoint.npz"), "--data", str(fashion_root),
                             "--no-progress"]) == 0
    assert "left-right flips" in capsys.readouterr().out
    resumed = json.loads((out / "metrics.json").read_text())["config"]
    assert (resumed["architecture"], resumed["dropout"], resumed["flip"]) == ("mnist_cnn", 0.0, True)


def test_engine_textbook_trains_on_the_textbook_lines(mnist_root, tmp_path, monkeypatch, capsys):
    """--engine textbook runs minicnn/nn/textbook.py: a patched line there changes the trained weights; fast does not read it."""
    from minicnn.nn import textbook

    def weights(engine, name):
        code = train_mnist.main(["--data", str(mnist_root), "--limit-train", "128", "--limit-test", "64", "--epochs", "1",
                                 "--batch-size", "64", "--channels", "2,2", "--hidden", "4", "--engine", engine,
                                 "--out", str(tmp_path / name), "--no-progress"])
        assert code == 0
        return load_checkpoint(tmp_path / name / "checkpoint.npz").model["7.W"]

    plain = {engine: weights(engine, engine) for engine in ("textbook", "fast")}
    assert "engine: textbook" in capsys.readouterr().out
    real = textbook.dense_backward
    monkeypatch.setattr(textbook, "dense_backward", lambda dout, cache, need_dx: real(dout * 3, cache, need_dx))
    assert not np.allclose(weights("textbook", "textbook-patched"), plain["textbook"])
    np.testing.assert_array_equal(weights("fast", "fast-patched"), plain["fast"])


# ------------------------------------------------------------ issue 24: no run lost or mixed with another

def listing(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def spawn(mnist_root, out, *more, **popen):
    return subprocess.Popen([sys.executable, *TRAIN, *TINY, "--data", str(mnist_root), "--out", str(out), *more],
                            stdin=subprocess.DEVNULL, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, **popen)


def test_two_runs_into_one_folder_the_second_is_refused_naming_the_first(mnist_root, tmp_path):
    """Run 1 is paused (SIGSTOP) once it holds the folder; run 2 starts there: refused, run 1 ends untouched."""
    first = spawn(mnist_root, tmp_path, "--epochs", "2", "--seed", "1", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        assert first.stdout.readline().startswith(b"minicnn MNIST")   # it holds the folder and has its data
        first.send_signal(signal.SIGSTOP)
        before = listing(tmp_path)
        second = spawn(mnist_root, tmp_path, "--epochs", "2", "--seed", "2", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2 and err.decode().count("\n") == 1, err
        assert f"{tmp_path} is in use by another run (process {first.pid} holds" in err.decode()
        assert listing(tmp_path) == before      # nothing of the first run's was touched
    finally:
        first.send_signal(signal.SIGCONT)
    rest, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    ck = load_checkpoint(tmp_path / "checkpoint.npz")
    assert metrics["config"]["seed"] == json.loads(ck.extra_str("config"))["seed"] == 1 and ck.epoch == 2


def test_a_run_killed_with_sigkill_leaves_no_lock(mnist_root, tmp_path, capsys):
    first = spawn(mnist_root, tmp_path, "--epochs", "50", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert first.stdout.readline().startswith(b"minicnn MNIST")
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert tiny(mnist_root, tmp_path, "--epochs", "1", "--overwrite") == 0
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 1


def test_overwrite_then_a_crash_before_the_first_checkpoint_leaves_the_old_run(mnist_root, tmp_path, monkeypatch):
    assert tiny(mnist_root, tmp_path, "--epochs", "1") == 0
    (tmp_path / "featuremaps.png").write_bytes(b"a view of the old run")
    old = listing(tmp_path)

    def crash(*args, **kwargs):
        raise MemoryError("the new run crashed before its first checkpoint")
    monkeypatch.setattr(train_mnist, "train_resumable", crash)
    with pytest.raises(MemoryError):
        tiny(mnist_root, tmp_path, "--epochs", "2", "--overwrite")
    assert listing(tmp_path) == old
    monkeypatch.undo()
    assert tiny(mnist_root, tmp_path, "--epochs", "2", "--overwrite", "--seed", "5") == 0   # success: all replaced
    assert sorted(listing(tmp_path)) == sorted(["checkpoint.npz", "metrics.json"]
                                               + (["kernels.png", "curves.png"] if plotting.have_matplotlib() else []))
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["seed"] == 5


BAD_NUMBERS = [("--lr", "0"), ("--lr", "-0.1"), ("--lr", "nan"), ("--lr", "inf"), ("--lr", "11"),
               ("--momentum", "-0.5"), ("--momentum", "1"), ("--momentum", "nan"), ("--momentum", "inf"),
               ("--weight-decay", "-1"), ("--weight-decay", "nan"), ("--weight-decay", "inf"),
               ("--warmup", "-1"), ("--warmup", "nan"), ("--warmup", "inf"),
               ("--hidden", "100000000"), ("--channels", "100000,100000"), ("--channels", "600,2"),
               ("--max-shift", "14"), ("--max-shift", "1000"), ("--max-shift", "3000"), ("--batch-size", "100000")]


@pytest.mark.parametrize("option, value", BAD_NUMBERS)
def test_numbers_out_of_range_are_one_line_exit_2_and_leave_nothing(mnist_root, tmp_path, capsys, option, value):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        tiny(mnist_root, out, "--epochs", "1", option, value)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.splitlines()[-1].startswith("minicnn train: error: "), err
    line = err.splitlines()[-1]
    assert option in line and ("expected" in line or "parameters" in line or "at most" in line), line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_caps_are_stated_and_the_largest_allowed_values_run(capsys):
    for argv, message in ((["--hidden", "100000000"], "--hidden 100000000 give a network of 157,900,004,810 "
                                                      "parameters, more than the 10,000,000 this command trains"),
                          (["--channels", "100000,100000"], "--channels 100000,100000 --hidden 128 give a network of "
                                                            "90,628,301,418 parameters"),
                          (["--channels", "600,2"], "at most 512 filters per conv layer"),
                          (["--max-shift", "14"], "expected less than half the image side (28 pixels for mnist), "
                                                  "i.e. at most 13")):
        with pytest.raises(SystemExit):
            train_mnist.main(argv + ["--out", "/nonexistent/never-made"])
        assert message in capsys.readouterr().err
    args, _ = train_mnist.parse_args(["--max-shift", "13", "--lr", "10", "--momentum", "0", "--warmup", "0"])
    train_mnist.fill_recipe(args)
    assert train_mnist.check_run(args) is None


def _stdout_goes_away(mnist_root, out, *more, stderr=subprocess.PIPE):
    proc = spawn(mnist_root, out, "--epochs", "3", *more, stdout=subprocess.PIPE, stderr=stderr)
    assert proc.stdout.readline().startswith(b"minicnn MNIST")
    proc.stdout.close()                           # as `| head -1` does
    _, err = proc.communicate(timeout=120)
    return proc.returncode, (err or b"").decode()


def test_a_closed_stdout_is_not_a_finished_run(mnist_root, tmp_path):
    code, err = _stdout_goes_away(mnist_root, tmp_path)
    assert (code, err) == (0, "")
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 3
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and len(metrics["history"]) == 3
    assert (tmp_path / "curves.png").exists() == plotting.have_matplotlib()
    assert "a closed output is not a finished run" in train_mnist.build_parser().format_help().lower()


def test_a_closed_stdout_and_stderr_with_progress_bars_is_not_a_finished_run(mnist_root, tmp_path):
    code, _ = _stdout_goes_away(mnist_root, tmp_path, "--progress", stderr=subprocess.STDOUT)   # `2>&1 | head -1`
    assert code == 0 and json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 3


@pytest.fixture(scope="module")
def tiny_run(mnist_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert train_mnist.main(TINY + ["--data", str(mnist_root), "--out", str(out), "--epochs", "1"]) == 0
    return out / "checkpoint.npz"


def _config_without(path, key):
    config = json.loads(str(crafted.read_entries(path)["extra/config"]))
    del config[key]
    return {"extra/config": np.array(json.dumps(config))}


TAMPERED = {
    "shapes": (lambda p: {"model/0.W": np.zeros((3, 1, 3, 3), np.float32)},
               r"entry 'model/0\.W' holds shape \(3, 1, 3, 3\), the architecture declares \(2, 1, 3, 3\)"),
    "no channels": (lambda p: _config_without(p, "channels"), r"its training configuration lacks channels"),
    "nan": (lambda p: {"model/3.b": np.full(4, np.nan, np.float32)},
            r"entry 'model/3\.b' holds 4 NaN or infinite values out of 4"),
    "int64": (lambda p: {"model/0.W": np.ones((2, 1, 3, 3), np.int64)},
              r"entry 'model/0\.W' holds int64; weights and buffers must be floating-point"),
    "lr nan": (lambda p: {"extra/config": np.array(str(crafted.read_entries(p)["extra/config"])
                                                   .replace('"lr": 0.05', '"lr": NaN'))},
               r"its saved option lr = nan is not one this command runs: expected a number in \(0, 10\]"),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_checkpoint_under_resume_is_one_line(tiny_run, mnist_root, tmp_path, capsys, case):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(tiny_run.read_bytes())
    change, message = TAMPERED[case]
    crafted.replace(path, change(path))
    code = train_mnist.main(["--resume", str(path), "--data", str(mnist_root), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


def test_the_script_in_experiments_is_the_command(tmp_path):
    """``python experiments/train_mnist.py`` still works: it calls ``minicnn train``, whose options it shows."""
    from minicnn.__main__ import COMMANDS

    assert COMMANDS["train"][0] == train_mnist.__name__
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: minicnn train") and "--resume" in done.stdout
    assert len(SCRIPT.read_text().splitlines()) <= 15                   # a shim, not a second copy


def test_label_smoothing_and_test_time_shifts_are_run_options_kept_for_a_resume(mnist_root, tmp_path, capsys):
    assert tiny(mnist_root, tmp_path, "--epochs", "1", "--label-smoothing", "0.1", "--test-time", "shifts") == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["label_smoothing"] == 0.1 and metrics["test_time"] == "shifts"
    assert "label smoothing 0.1" in out and "test-time shifts" in out
    assert (f"test accuracy {metrics['test_accuracy']:.4f} (predictions averaged over the image and its 8 copies "
            f"moved by one pixel (across, up and down, and diagonally); {metrics['test_accuracy_as_they_are']:.4f} on the images "
            "as they are)") in out
    # a resumed run keeps them, and refuses another value
    assert train_mnist.main(["--data", str(mnist_root), "--resume", str(tmp_path / "checkpoint.npz"), "--epochs", "2",
                             "--label-smoothing", "0.2", "--no-progress"]) == 2
    assert "--label-smoothing 0.2 (the run used 0.1)" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--label-smoothing", "1"), ("--label-smoothing", "-0.1"),
                                           ("--test-time", "rotations")])
def test_label_smoothing_and_test_time_refuse_bad_values(option, value, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_mnist.main([option, value, "--out", str(tmp_path / "o")])
    assert option in capsys.readouterr().err
