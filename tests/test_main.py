import sys

from minicnn.__main__ import COMMANDS, main


def test_usage_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_unknown_command_says_what_exists(capsys):
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'trian'" in err and "explain" in err


def test_output_cut_short_by_the_reader_is_not_an_error(monkeypatch, tmp_path):
    # `python -m minicnn explain | head -3`: writing to the closed pipe raises BrokenPipeError; exit quietly with 0.
    import minicnn.edges.explain

    def closed_pipe(argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(minicnn.edges.explain, "main", closed_pipe)
    with open(tmp_path / "stdout", "w") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        assert main(["explain"]) == 0
