"""``minicnn exercises``: list the exercises, start one, check yours, or print the library's solution.

    minicnn exercises                          the list, with each one's state in ./minicnn-exercises
    minicnn exercises start conv2d_forward     writes ./minicnn-exercises/conv2d_forward.py (never overwrites)
    minicnn exercises check minicnn-exercises  checks every exercise file there (or one file)
    minicnn exercises solution conv2d_forward  the library's textbook version, and where it lives

``check`` exits 0 when all pass, 1 when any is wrong, 2 when a file cannot be used.  Then
``minicnn train --mine minicnn-exercises`` trains with your passed functions.
"""
import argparse
import sys
from pathlib import Path

from minicnn.exercises import solutions
from minicnn.exercises.catalog import EXERCISES, skeleton
from minicnn.exercises.checks import PASSED, UNUSABLE, WRONG, check_file

DEFAULT_DIR = "minicnn-exercises"
STATES = {PASSED: "passed", WRONG: "wrong", UNUSABLE: "started"}


def build_parser():
    p = argparse.ArgumentParser(prog="minicnn exercises", description=__doc__.replace("``", "'"),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"your exercises' folder, for the list (default: {DEFAULT_DIR})")
    sub = p.add_subparsers(dest="action")
    start = sub.add_parser("start", help="write NAME.py to fill in")
    start.add_argument("name", choices=list(EXERCISES), metavar="NAME")
    start.add_argument("--dir", default=DEFAULT_DIR, help=f"where to write it (default: {DEFAULT_DIR})")
    check = sub.add_parser("check", help="check one exercise file, or every one in a folder")
    check.add_argument("path", metavar="PATH")
    solution = sub.add_parser("solution", help="print the library's own version")
    solution.add_argument("name", choices=list(EXERCISES), metavar="NAME")
    return p


def exercise_files(folder):
    """The exercise files of ``folder``, in the chapters' order."""
    return [Path(folder) / f"{name}.py" for name in EXERCISES if (Path(folder) / f"{name}.py").is_file()]


def _list(folder):
    print(f"exercises, in the chapters' order (states from {folder}/):")
    for name, e in EXERCISES.items():
        path = Path(folder) / f"{name}.py"
        state = STATES[check_file(path).code] if path.is_file() else "not started"
        print(f"  {name:<22} {state:<12} {e.line}")
    print("\nminicnn exercises start NAME   writes NAME.py to fill in; 'check PATH' checks it")
    return 0


def _start(name, folder):
    path = Path(folder) / f"{name}.py"
    if path.exists():
        print(f"minicnn exercises: {path} exists already; it is left as it is (check it with: minicnn exercises check {path})",
              file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", encoding="utf-8") as f:      # "x": never replace a file that appeared meanwhile
        f.write(skeleton(name))
    print(f"wrote {path}: fill in {name}, then run: minicnn exercises check {path}")
    return 0


def _check(path):
    path = Path(path)
    if path.is_dir():
        files = exercise_files(path)
        if not files:
            print(f"minicnn exercises: {path} has no exercise file (NAME.py for NAME in {', '.join(EXERCISES)})",
                  file=sys.stderr)
            return 2
    elif path.is_file():
        files = [path]
    else:
        print(f"minicnn exercises: no file or folder {path}", file=sys.stderr)
        return 2
    codes = []
    for f in files:
        result = check_file(f)
        codes.append(result.code)
        print(f"{result.name}: {STATES[result.code] if result.code != UNUSABLE else 'cannot be used'}: {result.message}")
    return UNUSABLE if UNUSABLE in codes else WRONG if WRONG in codes else PASSED


def _solution(name):
    print(f"# {name}: the library's own version; the code that trains the networks is in {EXERCISES[name].mirrors}")
    print("# (this one: minicnn/exercises/solutions.py, in the exercise's signature)\n")
    print(solutions.source(name))
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.action == "start":
        return _start(args.name, args.dir)
    if args.action == "check":
        return _check(args.path)
    if args.action == "solution":
        return _solution(args.name)
    return _list(args.dir)
