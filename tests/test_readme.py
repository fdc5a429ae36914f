"""The front page: short, its example runs and learns, its quick start is what CI runs, its reading path is true."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MAX_CHARACTERS = 8000


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def section(text, heading):
    """The text under ``## heading`` up to the next ``## `` heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_readme_is_a_front_page():
    size = len(README.read_text(encoding="utf-8"))
    assert size <= MAX_CHARACTERS, f"README.md has {size:,} characters; at most {MAX_CHARACTERS:,} (the rest goes to docs/)"


def test_readme_example_runs_and_learns(capsys):
    code, = python_blocks(section(README.read_text(encoding="utf-8"), "A CNN in a dozen lines"))
    namespace = {}
    exec(compile(code, "README example", "exec"), namespace)
    loss, accuracy = (float(v) for v in capsys.readouterr().out.split())
    assert loss < 0.6, loss
    assert accuracy > 0.9, accuracy


def test_the_layers_page_example_runs_and_learns():
    code, = python_blocks((REPO / "docs" / "layers.md").read_text(encoding="utf-8"))
    namespace = {}
    exec(compile(code, "docs/layers.md example", "exec"), namespace)
    loss, accuracy = namespace["evaluate"](namespace["model"], namespace["x"][2500:], namespace["y"][2500:])
    assert accuracy > 0.9, (loss, accuracy)
    assert namespace["model"].layers[1].buffers["running_var"].std() > 0   # the running statistics were updated


def test_readme_quick_start_has_the_ci_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line)
    assert command.strip() in README.read_text(encoding="utf-8")


READING_ITEM = re.compile(r"^\d+\.\s.*?\[`?([\w/.]+\.py)`?\]\(([^)]+)\).*?(\d[\d,]*) lines", re.M)


def reading_path(text):
    """[(path, stated line count)] of the numbered items under 'Read it in this order'."""
    return [(link, int(count.replace(",", ""))) for _, link, count in READING_ITEM.findall(section(text, "Read it in this order"))]


def reading_path_problems(text):
    """What is wrong with the reading path of a README's ``text``: files missing, line counts off by more than 10%."""
    problems = []
    for link, stated in reading_path(text):
        path = REPO / link
        if not path.is_file():
            problems.append(f"the reading path names {link}, which does not exist")
            continue
        actual = len(path.read_text(encoding="utf-8").splitlines())
        if abs(actual - stated) > max(10, stated // 10):
            problems.append(f"the reading path says {link} has {stated} lines; it has {actual}: update the count")
    return problems


def test_reading_path_names_files_that_exist_with_their_line_counts():
    text = README.read_text(encoding="utf-8")
    assert len(reading_path(text)) >= 3, "expected at least three numbered files to read, each with its line count"
    assert reading_path_problems(text) == []


def test_reading_path_check_catches_a_wrong_count_and_a_missing_file():
    text = ("# x\n\n## Read it in this order\n\n1. [`model.py`](minicnn/nn/model.py), 3,000 lines: the table.\n"
            "2. [`gone.py`](minicnn/nn/gone.py), 10 lines: nothing.\n\n## Next\n")
    assert reading_path(text) == [("minicnn/nn/model.py", 3000), ("minicnn/nn/gone.py", 10)]
    wrong_count, missing = reading_path_problems(text)
    assert "says minicnn/nn/model.py has 3000 lines" in wrong_count
    assert "minicnn/nn/gone.py, which does not exist" in missing


def test_readme_quick_start_trains_with_the_command():
    """The main job is the installed command, not a script in the source: it works from a wheel too."""
    from minicnn.__main__ import COMMANDS

    quick = README.read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert '.venv/bin/pip install -e ".[plot]" && .venv/bin/minicnn train\n' in quick
    assert "python experiments/train_mnist.py" not in quick and "train" in COMMANDS     # the commands it shows
