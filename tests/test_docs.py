"""Docs that cannot rot silently: every relative link and picture resolves, the front page's commands work,
every command has its line in docs/cli.md, and every picture in docs/ has the command that makes it."""
import functools
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from minicnn.__main__ import COMMANDS

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = sorted([REPO / "README.md", REPO / "ARCHITECTURE.md", REPO / "datasets" / "README.md",
                *DOCS.glob("*.md"), *(DOCS / "tour").glob("*.md")])

# ------------------------------------------------------------------------------------------------
# links


FENCED = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:img|a)\s[^>]*?(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def prose(text):
    """The text without fenced blocks and inline code, where link-like text is not a link."""
    return INLINE_CODE.sub("", FENCED.sub("", text))


def anchors(text):
    """GitHub's anchors for the headings of a markdown text: lower case, punctuation dropped, spaces -> '-'."""
    seen, result = {}, set()
    for heading in HEADING.findall(prose(text)):
        heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)            # a link's text only
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def links(text):
    body = prose(text)
    return LINK.findall(body) + HTML_LINK.findall(body) + REFERENCE.findall(body)


def broken_links(page):
    """Every relative link or picture of the markdown file ``page`` that does not resolve, as 'target: why'."""
    text = page.read_text(encoding="utf-8")
    problems = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
            continue                                   # http:, https:, mailto: ... are not ours to follow
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            problems.append(f"{target}: no such file {resolved}")
        elif REPO not in resolved.parents and resolved != REPO:
            problems.append(f"{target}: outside the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_picture_resolves(page):
    assert broken_links(page) == []


def test_the_pages_are_found_and_have_links():
    names = {str(p.relative_to(REPO)) for p in PAGES}
    assert {"README.md", "ARCHITECTURE.md", "docs/README.md", "docs/tour/README.md"} <= names
    assert len(links((REPO / "README.md").read_text(encoding="utf-8"))) >= 8


def test_the_link_check_catches_a_missing_file_picture_and_heading(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    (tmp_path / "there.md").write_text("# A heading, with punctuation!\n\ntext\n")
    (tmp_path / "pic.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a-heading-with-punctuation) ![ok](pic.png) [web](https://example.org/x)\n"
                    "[gone](gone.md) ![gone](missing.png) [bad anchor](there.md#nope) [here](#nowhere)\n"
                    '<img src="also-missing.png"> `[code](not-a-link.md)`\n\n```\n[fenced](not-a-link.md)\n```\n')
    assert [p.split(":")[0] for p in broken_links(page)] == [
        "gone.md", "missing.png", "there.md#nope", "#nowhere", "also-missing.png"]


# ------------------------------------------------------------------------------------------------
# the front page's commands

# Commands of the quick start that run for real only in CI (.ci/run) or take minutes: checked, not run.
SETUP = {("python3", "-m", "venv", ".venv")}
# Commands quick enough to run for real here, with what their output must contain.
RUN_FOR_REAL = {("-m", "minicnn", "explain"): "sum"}
# Commands of issue 25 (packaging): `minicnn train`, `sobel` and `edges` exist once that branch is merged;
# until then the tests that name them fail, on purpose, so that the merge is what makes them pass.
PENDING_UNTIL_PACKAGING = ("train", "sobel", "edges")


def extras():
    """The optional-dependency groups of pyproject.toml (read without tomllib, which Python 3.10 lacks)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z0-9_-]+)\s*=", block, re.M))


def shell_commands(markdown):
    """Every command of the ``bash`` / ``sh`` / ``console`` fenced blocks, split at ``&&``, comments dropped."""
    commands = []
    for lang, body in re.findall(r"^```(bash|sh|shell|console)\n(.*?)^```", markdown, re.S | re.M):
        for line in body.splitlines():
            words = shlex.split(line.removeprefix("$ "), comments=True)
            while words:
                part, words = (words[:words.index("&&")], words[words.index("&&") + 1:]) if "&&" in words else (words, [])
                commands.append(tuple(part))
    return commands


def as_python(words):
    """A front-page command as the argv that runs it with this interpreter, or None when it is not python/minicnn."""
    program, rest = words[0], list(words[1:])
    if program in (".venv/bin/minicnn", "minicnn"):
        return ["-m", "minicnn", *rest]
    if program in (".venv/bin/python", "python", "python3") and rest[:2] != ["-m", "venv"]:
        return rest
    return None


def how_to_check(argv):
    """(the argv prefix to ask for --help, the options the command uses) for a python argv."""
    if argv[:1] == ["-m"]:
        prefix = argv[:2] + ([argv[2]] if argv[1] == "minicnn" and len(argv) > 2 and not argv[2].startswith("-") else [])
    else:
        prefix = [str(REPO / argv[0])]                 # a script: experiments/..., docs/...
    return prefix, [w.split("=")[0] for w in argv[len(prefix):] if w.startswith("--")]


@functools.lru_cache(maxsize=None)
def help_text(prefix):
    """(exit status, output) of ``python PREFIX --help``, asked once per prefix."""
    done = subprocess.run([sys.executable, *prefix, "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    said = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode, done.stdout if done.returncode == 0 else (said[0] if said else "(nothing)")


def check_command(words, cwd):
    """Check one front-page command; returns what is wrong with it ('' when nothing)."""
    if words in SETUP:
        return ""
    if words[0].endswith("pip") and words[1:2] == ("install",):
        wanted = {e for w in words for e in re.findall(r"\[([\w,-]+)\]", w) for e in e.split(",")}
        unknown = wanted - extras()
        return f"pip install names extras {sorted(unknown)} that pyproject.toml does not define" if unknown else ""
    argv = as_python(words)
    if argv is not None and argv[:1] != ["-m"] and not (REPO / argv[0]).is_file():
        return f"{shlex.join(words)}: no script {argv[0]} in the repository"
    if argv is None:
        return f"the docs test does not know how to check {shlex.join(words)!r}: teach tests/test_docs.py"
    if argv == ["-m", "pytest"]:
        return ""                                      # the quick start's test command is the suite itself
    expected = next((out for key, out in RUN_FOR_REAL.items() if tuple(argv) == key), None)
    if expected is not None:
        done = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=60)
        return "" if done.returncode == 0 and expected in done.stdout else f"{shlex.join(words)} failed: {done.stderr[-500:]}"
    prefix, options = how_to_check(argv)
    if argv[0] != "-m" and "argparse" not in Path(prefix[0]).read_text(encoding="utf-8"):
        return ""                                      # a script without options (a tour chapter): it exists
    status, output = help_text(tuple(prefix))
    if status != 0:
        return f"{shlex.join(words)}: '--help' exited with {status}: {output}"
    unknown = [o for o in options if o not in output]
    return f"{shlex.join(words)}: its --help does not know {unknown}" if unknown else ""


README_COMMANDS = shell_commands((REPO / "README.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("words", README_COMMANDS, ids=shlex.join)
def test_the_front_page_commands_work(words, tmp_path):
    assert check_command(words, tmp_path) == ""


DOCS_COMMANDS = sorted({words for page in DOCS.glob("*.md") for words in shell_commands(page.read_text(encoding="utf-8"))})


@pytest.mark.parametrize("words", DOCS_COMMANDS, ids=shlex.join)
def test_the_docs_commands_name_real_commands_and_options(words, tmp_path):
    assert check_command(words, tmp_path) == ""


def test_the_front_page_has_its_quick_start_and_the_command_test_sees_it():
    assert (".venv/bin/minicnn", "train") in README_COMMANDS
    assert (".venv/bin/python", "-m", "pytest") in README_COMMANDS
    assert ("python3", "-m", "venv", ".venv") in README_COMMANDS


def test_the_command_check_catches_a_wrong_command_option_and_extra(tmp_path):
    assert check_command((".venv/bin/minicnn", "explain", "--kernel", "sobel_y"), tmp_path) == ""
    assert "exited with 2" in check_command((".venv/bin/minicnn", "no-such-command"), tmp_path)
    assert "does not know ['--no-such-option']" in check_command((".venv/bin/minicnn", "inspect", "--no-such-option"), tmp_path)
    assert "extras ['nope']" in check_command((".venv/bin/pip", "install", "-e", ".[plot,nope]"), tmp_path)
    assert "teach tests/test_docs.py" in check_command(("curl", "https://example.org"), tmp_path)
    assert "no script experiments/gone.py" in check_command((".venv/bin/python", "experiments/gone.py"), tmp_path)


# ------------------------------------------------------------------------------------------------
# every command in docs/cli.md, every picture with its command


def cli_page_commands():
    return set(re.findall(r"^\| `([a-z-]+)` \|", (DOCS / "cli.md").read_text(encoding="utf-8"), re.M))


@pytest.mark.parametrize("name", sorted(set(COMMANDS) | set(PENDING_UNTIL_PACKAGING)))
def test_every_command_has_its_line_in_cli_md_and_exists(name):
    assert name in cli_page_commands(), f"docs/cli.md has no row for 'minicnn {name}'"
    assert name in COMMANDS, f"docs/cli.md lists 'minicnn {name}', which 'python -m minicnn --help' does not"


def test_cli_md_lists_no_command_that_is_not_one():
    assert cli_page_commands() - set(COMMANDS) - set(PENDING_UNTIL_PACKAGING) == set()


def load_make_pictures():
    spec = importlib.util.spec_from_file_location("make_pictures", DOCS / "make_pictures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_picture_in_docs_has_the_command_that_makes_it_and_is_small():
    make = load_make_pictures()
    pictures = {p.name for p in DOCS.glob("*.png")}
    assert pictures == set(make.PICTURES) | set(make.NOT_MADE_HERE)
    for name in pictures:
        assert (DOCS / name).stat().st_size < 100_000, f"docs/{name} is {(DOCS / name).stat().st_size:,} bytes"


@pytest.mark.parametrize("picture", sorted(load_make_pictures().PICTURES))
def test_the_picture_commands_are_real_commands(picture, tmp_path):
    argv = load_make_pictures().command_for(picture, "runs/mnist", tmp_path)
    assert check_command(("minicnn", *argv[3:]), tmp_path) == ""


# ------------------------------------------------------------------------------------------------
# ARCHITECTURE.md's list of the modules tested through others


def modules_without_their_own_test(repo=REPO):
    """minicnn/<sub>/<name>.py without tests/<sub>/test_<name>.py (packages' __init__.py aside)."""
    missing = set()
    for module in (repo / "minicnn").rglob("*.py"):
        relative = module.relative_to(repo / "minicnn")
        if module.name != "__init__.py" and not (repo / "tests" / relative.parent / f"test_{module.name}").is_file():
            missing.add(str(module.relative_to(repo)))
    return missing


def test_architecture_lists_the_modules_without_their_own_test():
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    listed = text.split("<!-- modules tested elsewhere: start -->")[1].split("<!-- modules tested elsewhere: end -->")[0]
    assert set(re.findall(r"`(minicnn/[\w/]+\.py)`", listed)) == modules_without_their_own_test()


def test_architecture_line_counts_are_true():
    """Every "`name.py` (N lines" of ARCHITECTURE.md, within 10% (the file looked up at the root, then in experiments/)."""
    counts = re.findall(r"`([\w/]+\.py)` \((\d+) lines", (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    assert len(counts) >= 4
    for name, stated in counts:
        path = next(p for p in (REPO / name, REPO / "experiments" / name) if p.is_file())
        actual = len(path.read_text(encoding="utf-8").splitlines())
        assert abs(actual - int(stated)) <= max(10, int(stated) // 10), f"ARCHITECTURE.md: {name} has {actual} lines, not {stated}"


@pytest.mark.parametrize("script", ["train_mnist.py", "learn_sobel.py", "edge_classifier.py"])
def test_the_experiment_scripts_of_the_commands_are_a_few_lines(script):
    """ARCHITECTURE.md says so; true once issue 25 (packaging) moves them into the package as commands."""
    lines = len((REPO / "experiments" / script).read_text(encoding="utf-8").splitlines())
    assert lines <= 30, f"experiments/{script} has {lines} lines; ARCHITECTURE.md calls it a few lines that call a command"
