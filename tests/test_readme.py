"""The README's example runs as printed and learns."""
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs_and_learns(capsys):
    text = README.read_text()
    section = text[text.index("## A CNN in a dozen lines"):]
    code, more = re.findall(r"```python\n(.*?)```", section[:section.index("\n## ", 3)], re.S)[:2]
    namespace = {}
    exec(compile(code, "README example", "exec"), namespace)
    loss, accuracy = namespace["evaluate"](namespace["model"], namespace["x"][2500:], namespace["y"][2500:])
    assert accuracy > 0.9, (loss, accuracy)
    assert "Total params: 2,132" in capsys.readouterr().out
    exec(compile(more, "README example, continued", "exec"), namespace)     # batch norm, dropout, AdamW
    loss, accuracy = namespace["evaluate"](namespace["model"], namespace["x"][2500:], namespace["y"][2500:])
    assert accuracy > 0.9, (loss, accuracy)
    assert namespace["model"].layers[1].buffers["running_var"].std() > 0   # the running statistics were updated


def test_readme_quick_start_has_the_ci_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line)
    assert command.strip() in README.read_text()


def test_readme_quick_start_trains_with_the_command():
    """The main job is the installed command, not a script in the source: it works from a wheel too."""
    from minicnn.__main__ import COMMANDS

    quick = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert '.venv/bin/pip install -e ".[plot]" && .venv/bin/minicnn train\n' in quick
    assert "python experiments/train_mnist.py" not in quick and "train" in COMMANDS     # the commands it shows
