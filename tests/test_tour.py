"""The tour (docs/tour) and its helpers (minicnn/tour.py): every chapter runs, its checks hold, and its page is fresh.

Each chapter ends with asserts that make its claims true, so running it is the test. Freshness, four ways:

- a chapter's output now is its rendered page's output: the same words and numbers, a number that may vary
  between machines marked on the page with its tolerance (``minicnn.tour.vary``: "84.6% (±3)");
- the chapter's source and every file of minicnn it loaded (its helpers among them) are what it was rendered
  from (``docs/tour/rendered.json``, written by ``render.py``);
- rendering a chapter twice gives the same bytes, and the same page as the one in the repository;
- the course's kernels and the patch table are the library's, exactly.

Each chapter runs in at most 30 s on a busy 2-core machine (the slowest, chapter 8, in about 10 s to 25 s as load varies).
"""
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn import Conv2D
from minicnn.edges.filters import get_kernel
from minicnn.tour import same_output, vary

REPO = Path(__file__).resolve().parents[1]
TOUR = REPO / "docs" / "tour"
spec = importlib.util.spec_from_file_location("tour_render", TOUR / "render.py")
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)                      # needs only the standard library until render() runs
CHAPTERS = render.chapters()
TIMEOUT = 300                                        # seconds per chapter; each takes at most 30 s
# The chapters that train in float32: there any printed number may also differ by one unit in its last digit
# (a value near a rounding boundary on another CPU or BLAS thread count); a number marked (±) by its tolerance.
TRAINING = {"05_why_convolution", "06_misconceptions", "07_learning_the_kernel", "08_edges_from_a_task", "09_pixel_shuffle"}


def test_there_are_nine_chapters():
    assert [c.name[:2] for c in CHAPTERS] == [f"{i:02d}" for i in range(1, 10)]


def _run(chapter, tmp_path, extra_path=None):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(chapter)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def page_output(markdown_text):
    """The text outputs of a rendered chapter (its ```text blocks), one line each, blank lines dropped."""
    blocks = re.findall(r"^```text\n(.*?)^```$", markdown_text, flags=re.S | re.M)
    return _lines("\n".join(blocks))


def _lines(text):
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_chapter_runs_its_checks_hold_and_its_page_shows_its_output(chapter, tmp_path, mnist_root, monkeypatch):
    monkeypatch.setenv("MINICNN_MNIST_ROOT", str(mnist_root))
    result = _run(chapter, tmp_path)
    assert result.returncode == 0, f"{chapter.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), "a chapter prints what it measured"
    assert list(tmp_path.iterdir()) == [], "a chapter writes no files"
    page = chapter.with_suffix(".md").read_text(encoding="utf-8")
    difference = same_output(page_output(page), _lines(result.stdout), last_digit=chapter.stem in TRAINING)
    assert difference is None, (f"{chapter.stem}.md does not show what {chapter.name} prints now ({difference}): "
                                f"run python docs/tour/render.py {chapter.stem}")


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
    """The source, and every file of minicnn the chapter loaded (its helpers too), are those it was rendered from."""
    markdown = chapter.with_suffix(".md")
    assert markdown.is_file(), f"{markdown.name} is missing: run python docs/tour/render.py"
    last = markdown.read_text(encoding="utf-8").rstrip("\n").splitlines()[-1]
    match = render.STAMP.match(last)
    assert match and match["name"] == chapter.name, f"{markdown.name} does not end with its source's stamp: {last!r}"
    assert last == render.stamp(chapter), (f"{chapter.name} changed after {markdown.name} was rendered: "
                                           f"run python docs/tour/render.py {chapter.stem}")
    record = render.read_record().get(chapter.stem)
    assert record is not None, f"docs/tour/rendered.json has no entry for {chapter.stem}: run python docs/tour/render.py"
    if "from minicnn.tour import" in chapter.read_text(encoding="utf-8"):
        assert "minicnn/tour.py" in record["library"], "the helpers are among the files a chapter depends on"
    for path, digest in record["library"].items():
        assert (REPO / path).is_file(), f"{chapter.stem} was rendered with {path}, which is gone: render it again"
        now = hashlib.sha256((REPO / path).read_bytes()).hexdigest()
        assert now == digest, f"{path} changed after {chapter.stem} was rendered: run python docs/tour/render.py {chapter.stem}"


def test_the_record_changes_with_the_library(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("x = 1\n")
    before = hashlib.sha256(module.read_bytes()).hexdigest()
    module.write_text("x = 2\n")
    assert hashlib.sha256(module.read_bytes()).hexdigest() != before
    digests = render.library_digests([REPO / "minicnn" / "tour.py"])
    assert list(digests) == ["minicnn/tour.py"]


def test_stamp_changes_with_the_source(tmp_path):
    source = tmp_path / "09_x.py"
    source.write_text("# %%\nprint(1)\n")
    before = render.stamp(source)
    source.write_text("# %%\nprint(2)\n")
    assert render.stamp(source) != before and render.STAMP.match(before)


def test_a_page_edited_by_hand_is_caught():
    """The comparison behind the freshness test: a hand-edited number, an exact one, a word, all fail."""
    page = "test accuracy 84.60% (±3)\nweights 614,656\nsum: 3.0"
    assert same_output(page, page) is None
    assert same_output(page, page.replace("84.60%", "86.10%")) is None                 # within ±3 points
    assert "more than" in same_output(page, page.replace("84.60%", "99.60%"))
    assert same_output(page, page.replace("614,656", "614,657")) is not None
    assert same_output(page, page.replace("3.0", "3.1")) is not None
    assert same_output(page, page.replace("weights", "Weights")) is not None
    assert same_output(page, page.replace(" (±3)", "")) is not None
    assert same_output(page, page.replace("3.0", "3.1"), last_digit=True) is None                # one unit, last digit
    assert same_output(page, page.replace("3.0", "3.2"), last_digit=True) is not None
    assert same_output(page, page.replace("614,656", "614,657"), last_digit=True) is None
    assert same_output(page, page.replace("614,656", "615,656"), last_digit=True) is not None
    assert same_output("[[ 0.99 -1.  ]]", "[[ 1.   -1.  ]]", last_digit=True) is not None     # 0.99 vs 1.: not the same form
    assert same_output("a 1.5e-03", "a 1.6e-03", last_digit=True) is None


def test_vary_states_its_tolerance():
    assert vary(0.846, ".1%", 3) == "84.6% (±3)" and vary(0.51234, ".3f", 0.05) == "0.512 (±0.05)"
    with pytest.raises(ValueError, match="tolerance above 0"):
        vary(1.0, ".1f", 0)


def test_page_output_reads_the_text_blocks():
    text = "# Title\n\n```text\na 1\n\nb 2\n```\n\n    indented code\n\n```text\nc 3\n```\n"
    assert page_output(text) == "a 1\nb 2\nc 3"


def test_rendering_twice_gives_the_same_bytes_and_the_page_in_the_repository(tmp_path, monkeypatch):
    """A chapter with figures, rendered twice in a scratch folder: the same .md, PNGs and record, and the .md committed."""
    pytest.importorskip("jupytext")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    chapter = TOUR / "04_kernels.py"
    results = []
    for attempt in ("a", "b"):
        folder = tmp_path / attempt
        folder.mkdir()
        shutil.copy(chapter, folder)
        monkeypatch.setattr(render, "RECORD", folder / "rendered.json")
        markdown, pngs = render.render(folder / chapter.name, timeout=120)
        results.append((markdown.read_bytes(), [(p.name, p.read_bytes()) for p in pngs], (folder / "rendered.json").read_bytes()))
    assert results[0] == results[1]
    assert [name for name, _ in results[0][1]] == ["figure_1.png"]
    assert results[0][0] == chapter.with_suffix(".md").read_bytes(), "the page in the repository is what the chapter renders"
    recorded = json.loads(results[0][2])["04_kernels"]
    assert recorded == render.read_record()["04_kernels"]


def test_the_course_constants_are_the_librarys_kernels_exactly():
    """The kernels as the course texts print them (000, 001, 003), and 004's patch table, against minicnn."""
    course = {
        "box_blur": np.ones((3, 3)) / 9,                                                  # 000, 003: all weights 1/9
        "gaussian": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,                    # 001
        "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),    # 001
        "sobel_x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64),      # 003
    }
    for name, kernel in course.items():
        assert np.array_equal(get_kernel(name, np.float64), kernel), name
    # 004: filter (vertical edge, bright-right) [-1 0 +1] in each row; edge patch 0 0 1 in each row gives 3, flat 1 1 1 gives 0
    layer = Conv2D(1, 1, 3, bias=False, dtype=np.float64)
    layer.params["W"][:] = np.array([[-1, 0, 1]] * 3)
    edge, flat = np.array([[0, 0, 1]] * 3, dtype=np.float64), np.ones((3, 3))
    assert layer.forward(edge[None, None]).item() == 3 and layer.forward(flat[None, None]).item() == 0
    assert (edge[0] * [-1, 0, 1]).sum() == 1 and (flat[0] * [-1, 0, 1]).sum() == 0        # "each row"


def test_the_notebooks_command_works_from_any_directory(tmp_path):
    """python -m minicnn.tour --out DIR --execute: the chapter as a notebook, run, with its outputs, from an empty folder."""
    pytest.importorskip("jupytext")
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    work = tmp_path / "anywhere"
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "minicnn.tour", "--out", "notebooks", "--execute", "02_by_hand"], cwd=work,
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    notebook = json.loads((work / "notebooks" / "02_by_hand.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]
    assert any("all three agree" in "".join(o.get("text", "")) for o in outputs)
    assert sorted(p.name for p in work.iterdir()) == ["notebooks"]
    bad = subprocess.run([sys.executable, "-m", "minicnn.tour", "--out", "n", "99_nothing"], cwd=work,
                         capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2 and "no chapter 99_nothing" in bad.stderr


def test_the_chapters_import_their_helpers_from_the_package_and_architecture_lists_it():
    for chapter in CHAPTERS:
        text = chapter.read_text(encoding="utf-8")
        assert "_tour" not in text.replace("minicnn.tour", ""), f"{chapter.name} imports a helper outside the package"
    assert not (TOUR / "_tour.py").exists()
    architecture = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert "tour.py" in architecture.split("## The files")[1] and "`minicnn.tour`" in architecture


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_rendered_chapter_is_plain_markdown_with_its_figures(chapter):
    text = chapter.with_suffix(".md").read_text(encoding="utf-8")
    render.check_markdown(text, chapter.name)                       # no raw HTML outside code blocks
    assert "/work/" not in text and "\\Users\\" not in text
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (TOUR / link).is_file(), f"{chapter.name} links a missing figure {link}"
        assert re.fullmatch(rf"{chapter.stem}_files/figure_\d+\.png", link), link


def test_check_markdown_refuses_raw_html():
    with pytest.raises(ValueError, match="raw HTML"):
        render.check_markdown("text\n<img src='a.png'>\n", "x.md")
    render.check_markdown("```text\n<Figure size 100x100>\n```\n", "x.md")


def test_the_course_table_points_at_real_checks():
    """docs/tour/README.md: each statement of the five course texts, the chapter line that checks it."""
    contents = (TOUR / "README.md").read_text(encoding="utf-8")
    table = contents.split("## The course, sentence by sentence")[1]
    rows = re.findall(r"^\| `(00\d)_[^|]*\|.*?\| \[(\d\d_\w+\.py):(\d+)\]\(\2#L\3\) \| (\w[^|]*?) \|$", table, flags=re.M)
    assert {r[0] for r in rows} == {"000", "001", "002", "003", "004"}, "every course text has its rows"
    for _, name, line, kind in rows:
        lines = (TOUR / name).read_text(encoding="utf-8").splitlines()
        assert int(line) <= len(lines), (name, line)
        code = lines[int(line) - 1]
        if kind.startswith("assert"):
            assert "assert" in code, f"{name}:{line} is not an assert: {code!r}"
        else:
            assert code.strip() and not code.startswith("#"), f"{name}:{line} is not code: {code!r}"


def test_the_tour_is_small_and_listed():
    pngs = list(TOUR.glob("*_files/*.png"))
    assert pngs and sum(p.stat().st_size for p in pngs) < 2 * 1024 * 1024
    contents = (TOUR / "README.md").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f"({chapter.stem}.md)" in contents and f"({chapter.name})" in contents
    front_page = (TOUR.parents[1] / "README.md").read_text(encoding="utf-8")
    assert "(docs/tour/README.md)" in front_page.split("## What else there is")[1].split("\n\n")[1]   # the first link there
