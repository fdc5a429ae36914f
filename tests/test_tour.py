"""The tour (docs/tour): every chapter runs as a plain script and its checks hold; every rendered chapter is fresh.

Each chapter ends with asserts that make its claims true, so running it is the test. The rendered
markdown records the SHA-256 of the source it came from (its last line); a chapter edited after it was
rendered fails here until ``python docs/tour/render.py`` is run again.
"""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TOUR = Path(__file__).resolve().parents[1] / "docs" / "tour"
spec = importlib.util.spec_from_file_location("tour_render", TOUR / "render.py")
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)                      # needs only the standard library until render() runs
CHAPTERS = render.chapters()
TIMEOUT = 600                                        # seconds per chapter; each takes well under a minute


def test_there_are_eight_chapters():
    assert [c.name[:2] for c in CHAPTERS] == [f"{i:02d}" for i in range(1, 9)]


def _run(chapter, tmp_path, extra_path=None):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(chapter)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_runs_and_its_checks_hold(chapter, tmp_path, mnist_root, monkeypatch):
    monkeypatch.setenv("MINICNN_MNIST_ROOT", str(mnist_root))
    result = _run(chapter, tmp_path)
    assert result.returncode == 0, f"{chapter.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), "a chapter prints what it measured"
    assert list(tmp_path.iterdir()) == [], "a chapter writes no files"


def test_a_chapter_runs_without_matplotlib(tmp_path):
    """Figures are skipped with one line saying so; the numbers and the checks are all still there."""
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('matplotlib hidden for this test')\n")
    work = tmp_path / "work"
    work.mkdir()
    result = _run(TOUR / "04_kernels.py", work, extra_path=fake)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.count("figures skipped: they need matplotlib") == 1
    assert "a synthetic stand-in" in result.stdout          # the photograph is read by matplotlib
    assert "the blurs smooth, sharpen sharpens" in result.stdout


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_rendered_chapter_is_fresh(chapter):
    markdown = chapter.with_suffix(".md")
    assert markdown.is_file(), f"{markdown.name} is missing: run python docs/tour/render.py"
    last = markdown.read_text(encoding="utf-8").rstrip("\n").splitlines()[-1]
    match = render.STAMP.match(last)
    assert match and match["name"] == chapter.name, f"{markdown.name} does not end with its source's stamp: {last!r}"
    assert last == render.stamp(chapter), (f"{chapter.name} changed after {markdown.name} was rendered: "
                                           f"run python docs/tour/render.py {chapter.stem}")


def test_stamp_changes_with_the_source(tmp_path):
    source = tmp_path / "09_x.py"
    source.write_text("# %%\nprint(1)\n")
    before = render.stamp(source)
    source.write_text("# %%\nprint(2)\n")
    assert render.stamp(source) != before and render.STAMP.match(before)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_rendered_chapter_is_plain_markdown_with_its_figures(chapter):
    text = chapter.with_suffix(".md").read_text(encoding="utf-8")
    render.check_markdown(text, chapter.name)                       # no raw HTML outside code blocks
    assert "/work/" not in text and "\\Users\\" not in text
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (TOUR / link).is_file(), f"{chapter.name} links a missing figure {link}"


def test_check_markdown_refuses_raw_html():
    with pytest.raises(ValueError, match="raw HTML"):
        render.check_markdown("text\n<img src='a.png'>\n", "x.md")
    render.check_markdown("```text\n<Figure size 100x100>\n```\n", "x.md")


def test_the_tour_is_small_and_listed():
    pngs = list(TOUR.glob("*_files/*.png"))
    assert pngs and sum(p.stat().st_size for p in pngs) < 2 * 1024 * 1024
    contents = (TOUR / "README.md").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f"({chapter.stem}.md)" in contents and f"({chapter.name})" in contents
    front_page = (TOUR.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/tour/README.md)" in front_page.split("## What else there is")[1].split("\n\n")[1]   # the first link there
