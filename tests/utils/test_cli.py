"""The shared command-line helpers: argument types, quiet closed pipes, strict JSON."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.utils.cli import nonnegative_int, nonnegative_int_list, positive_int, run_command, write_json

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("parse, text, message", [
    (positive_int, "0", "at least 1, got 0"), (positive_int, "-5", "at least 1, got -5"),
    (positive_int, "2.5", "at least 1, got '2.5'"), (nonnegative_int, "-1", "at least 0, got -1"),
    (nonnegative_int_list, "0,-1", "in '0,-1'"), (nonnegative_int_list, "0,a", "got 'a'")])
def test_argument_types_refuse_numbers_a_command_cannot_use(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(text)


def test_argument_types_accept_what_they_promise():
    assert (positive_int("1"), nonnegative_int("0"), nonnegative_int_list("0, 3,7")) == (1, 0, [0, 3, 7])


def test_write_json_writes_non_finite_numbers_as_null(tmp_path):
    path = write_json(tmp_path / "m.json", {"loss": float("nan"), "h": [{"x": float("inf")}, 1.5], "n": 3})

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    assert json.loads(path.read_text(), parse_constant=refuse) == {"loss": None, "h": [{"x": None}, 1.5], "n": 3}


def test_run_command_turns_a_closed_pipe_into_a_quiet_exit(monkeypatch, tmp_path):
    def closed_pipe(argv):
        raise BrokenPipeError(32, "Broken pipe")

    with open(tmp_path / "stdout", "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert run_command(closed_pipe) == 0
        assert run_command(lambda argv: 3) == 3 and run_command(lambda argv: {"a": 1}) == 0


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "minicnn.gradcheck"],
    [sys.executable, "-m", "minicnn", "sobel", "--steps", "5", "--out", "{tmp}"]])
def test_output_cut_short_by_head_ends_quietly(command, tmp_path):
    """`python -m minicnn.gradcheck | head -5`: the reader leaves after 5 lines; no BrokenPipeError traceback."""
    command = [part.replace("{tmp}", str(tmp_path)) for part in command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    for _ in range(5):
        assert proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.decode()) == (0, "")


def test_gradcheck_help_shows_help_without_running_the_check(capsys):
    from minicnn.nn import gradcheck

    with pytest.raises(SystemExit) as info:
        gradcheck.main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and out.startswith("usage: python -m minicnn.gradcheck") and "pass" not in out
