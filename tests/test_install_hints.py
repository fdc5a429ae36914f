"""Every install hint names our distribution, minicnn-numpy: ``pip install minicnn`` installs another project.

The name ``minicnn`` on the package index belongs to another author (with torch as a dependency), so a
message, docstring or doc that says ``pip install minicnn`` or ``pip install "minicnn[plot]"`` sends the
reader to the wrong package. The import name and the command stay ``minicnn``.
"""
import re
from pathlib import Path

import pytest

import minicnn

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(minicnn.__file__).resolve().parent      # the package imported (from the tree, or installed)
DISTRIBUTION = "minicnn-numpy"
# pip / pip3 / python -m pip / uv pip, "install", any options, then the bare name minicnn (quoted or not, with
# extras, a version or nothing after it), but not minicnn-numpy or minicnn_something.
WRONG = re.compile(r"""pip3?\s+install\s+(?:-{1,2}[\w-]+(?:=\S+)?\s+)*\\?["']?minicnn(?![-\w])""")
SCANNED = [PACKAGE, "experiments", "docs", "tests", "README.md", "ARCHITECTURE.md", "datasets/README.md",
           "pyproject.toml", ".ci/run"]
SUFFIXES = {".py", ".md", ".html", ".js", ".css", ".toml", ".txt", ""}


@pytest.mark.parametrize("text", [
    "pip install minicnn", 'pip install "minicnn[export]"', "pip install 'minicnn[plot]'", "pip3 install minicnn==0.2.0",
    "python -m pip install -U minicnn", "uv pip install minicnn.", 'f"needs it: pip install \\"minicnn[{extra}]\\""',
    ".venv/bin/pip install --upgrade minicnn[studio]",
])
def test_the_check_catches_the_wrong_name(text):
    assert WRONG.search(text)


@pytest.mark.parametrize("text", [
    'pip install "minicnn-numpy[export]"', "pip install minicnn-numpy", "pip install -e '.[plot]'",
    "pip install torch==2.13.0", "python -m minicnn train", "pip install minicnn_numpy",
])
def test_the_check_lets_the_right_name_through(text):
    assert not WRONG.search(text)


def _files():
    for name in SCANNED:
        path = REPO / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in SUFFIXES
                        and "__pycache__" not in p.parts and p != Path(__file__).resolve())


def _shown(path):
    return path.relative_to(PACKAGE.parent if path.is_relative_to(PACKAGE) else REPO)


def test_no_message_or_doc_says_pip_install_minicnn():
    files = list(_files())
    assert any(p.name == "images.py" for p in files) and any(p.suffix == ".md" for p in files)   # the scan saw them
    wrong = [f"{_shown(p)}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}"
             for p in files for text in [p.read_text(encoding="utf-8", errors="replace")] for m in WRONG.finditer(text)]
    assert not wrong, f"these name the other project's distribution; say {DISTRIBUTION!r}:\n" + "\n".join(wrong)


def test_the_distribution_is_named_minicnn_numpy():
    import importlib.metadata

    assert importlib.metadata.metadata(DISTRIBUTION)["Name"] == DISTRIBUTION
    assert f'name = "{DISTRIBUTION}"' in (REPO / "pyproject.toml").read_text()
