"""Render the tour: run every chapter as a notebook and write it as markdown with its figures.

    pip install -e ".[docs]"
    python docs/tour/render.py            # every chapter
    python docs/tour/render.py 03_sobel   # only the chapters named

Each ``NN_name.py`` (jupytext's percent format) becomes a notebook (jupytext), is executed in a
python3 kernel from this folder (nbclient), and is written as ``NN_name.md`` with its figures as
``NN_name_files/*.png`` (nbconvert's MarkdownExporter, text outputs as fenced code blocks). The last
line of each ``.md`` records the SHA-256 of the source it came from; ``tests/test_tour.py`` fails when
a source changed after it was rendered. Nothing is written when a chapter fails.
"""
import argparse
import hashlib
import os
import re
import shutil
import sys
from pathlib import Path

TOUR = Path(__file__).resolve().parent
STAMP = re.compile(r"^Rendered from (?P<name>\S+), sha256 (?P<digest>[0-9a-f]{64})\.$")

# Text outputs as fenced code blocks (nbconvert indents them), figures as plain markdown image links.
TEMPLATE = r"""{%- extends 'markdown/index.md.j2' -%}
{% block stream %}
```text
{{ output.text.rstrip() }}
```
{% endblock stream %}
{% block data_text %}
```text
{{ output.data['text/plain'].rstrip() }}
```
{% endblock data_text %}
{% block data_png %}
![figure]({{ output.metadata.filenames['image/png'] | posix_path }})
{% endblock data_png %}
"""


def chapters():
    """The chapter sources, in order: docs/tour/NN_*.py."""
    return sorted(TOUR.glob("[0-9][0-9]_*.py"))


def stamp(source):
    """The last line of a rendered chapter: which source, and its SHA-256."""
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    return f"Rendered from {Path(source).name}, sha256 {digest}."


def check_markdown(text, name):
    """Refuse raw HTML outside code blocks: hosts that render markdown strip it."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
        elif not inside and re.search(r"<[A-Za-z!/]", line):
            raise ValueError(f"{name}, line {number}: raw HTML in the rendered markdown: {line.strip()[:80]}")


def render(source, timeout=600):
    """Execute one chapter and write its .md and PNGs beside it. Returns (markdown path, PNG paths)."""
    import jinja2
    import jupytext
    from nbclient import NotebookClient
    from nbconvert import MarkdownExporter

    source = Path(source)
    # tqdm.auto warns inside a kernel without ipywidgets; the chapters show no progress bars anyway
    os.environ["PYTHONWARNINGS"] = "ignore:IProgress not found"
    notebook = jupytext.read(source)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(source.parent)}}).execute()
    exporter = MarkdownExporter(extra_loaders=[jinja2.DictLoader({"tour.md.j2": TEMPLATE})], template_file="tour.md.j2")
    files_dir = f"{source.stem}_files"
    body, resources = exporter.from_notebook_node(
        notebook, resources={"output_files_dir": files_dir, "unique_key": source.stem})
    body = body.replace(str(TOUR.parents[1]) + "/", "")      # no paths of the machine that rendered it
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n\n" + stamp(source) + "\n"
    check_markdown(body, source.name)
    folder = source.parent / files_dir
    shutil.rmtree(folder, ignore_errors=True)
    written = []
    for name, data in sorted(resources.get("outputs", {}).items()):
        path = source.parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    markdown = source.with_suffix(".md")
    markdown.write_text(body, encoding="utf-8")
    return markdown, written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="chapters to render, e.g. 03_sobel (default: all)")
    p.add_argument("--timeout", type=int, default=600, help="seconds a cell may run (default: 600)")
    args = p.parse_args(argv)
    sources = chapters()
    if args.names:
        by_stem = {s.stem: s for s in sources}
        unknown = [n for n in args.names if n not in by_stem]
        if unknown:
            raise SystemExit(f"no chapter {', '.join(unknown)}; the chapters are {', '.join(by_stem)}")
        sources = [by_stem[n] for n in args.names]
    for source in sources:
        markdown, pngs = render(source, args.timeout)
        size = sum(p.stat().st_size for p in pngs)
        print(f"{markdown.relative_to(TOUR.parents[1])}: {len(pngs)} figures, {size / 1024:.0f} KiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
