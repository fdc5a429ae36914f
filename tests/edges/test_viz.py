import numpy as np
import pytest

from minicnn.edges import viz
from minicnn.edges.filters import get_kernel
from minicnn.utils import plotting

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_format_kernel_aligns_signed_numbers():
    assert viz.format_kernel([[-1, 0, 1]], decimals=0) == ["-1  0 +1"]
    assert viz.format_kernel([[-1.5, 0.25], [10, -0.001]], decimals=2) == [" -1.50  +0.25", "+10.00   0.00"]
    with pytest.raises(ValueError, match="2-D kernel"):
        viz.format_kernel(np.zeros((1, 3, 3)))


def test_side_by_side_pads_blocks_under_titles():
    text = viz.side_by_side([["a", "bb"], ["ccc"]], ["T1", "T2"], gap=2)
    assert text.split("\n") == ["T1  T2", "a   ccc", "bb"]
    with pytest.raises(ValueError, match="2 blocks but 1 titles"):
        viz.side_by_side([["a"], ["b"]], ["x"])


def test_kernel_vs_reference_shows_both_grids_and_similarity():
    text = viz.kernel_vs_reference(-2 * get_kernel("sobel_y"), get_kernel("sobel_y"), "mine", "sobel_y")
    lines = text.split("\n")
    assert lines[0].split() == ["mine", "sobel_y"]
    assert lines[1].split() == ["+2.00", "+4.00", "+2.00", "-1.00", "-2.00", "-1.00"]
    assert lines[-1] == "cosine similarity (mean removed): -1.0000"


def _plot_everything(tmp_path):
    k = np.stack([get_kernel(n) for n in ("sobel_x", "sobel_y", "gaussian")])
    return [
        viz.plot_kernels(k, tmp_path / "grid.png"),
        viz.plot_kernels(k[:, None], tmp_path / "grid4d.png", titles=["a", "b", "c"], columns=2),
        viz.plot_kernel_matches(0.5 * k, k, ["a", "b", "c"], tmp_path / "match.png"),
        viz.plot_curves([1, 2, 3], [1.0, 0.5, 0.1], tmp_path / "curves.png", similarities={"x": [0.1, 0.5, 0.9]}),
    ]


def test_without_matplotlib_plots_return_none_and_hint_once(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(plotting, "have_matplotlib", lambda: False)
    monkeypatch.setattr(plotting, "_hint_given", False)
    assert _plot_everything(tmp_path) == [None] * 4
    assert _plot_everything(tmp_path) == [None] * 4
    err = capsys.readouterr().err
    assert err.count('pip install "minicnn-numpy[plot]"') == 1
    assert list(tmp_path.iterdir()) == []


def test_with_matplotlib_plots_write_png(monkeypatch, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(plotting, "_hint_given", False)
    paths = _plot_everything(tmp_path)
    for p in paths:
        assert p is not None
        with open(p, "rb") as fh:
            assert fh.read(8) == PNG_MAGIC
    assert "pip install" not in capsys.readouterr().err


def test_plot_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\(F, KH, KW\)"):
        viz.plot_kernels(np.zeros((3, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="one shape"):
        viz.plot_kernel_matches(np.zeros((2, 3, 3)), np.zeros((3, 3, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="one length"):
        viz.plot_curves([1, 2], [1.0], tmp_path / "x.png")
