"""Render the tour: run every chapter as a notebook and write it as markdown with its figures.

    pip install -e ".[docs]"
    python docs/tour/render.py            # every chapter
    python docs/tour/render.py 03_sobel   # only the chapters named

Each ``NN_name.py`` (jupytext's percent format) becomes a notebook (jupytext), is executed in a
python3 kernel from this folder (nbclient), and is written as ``NN_name.md`` with its figures as
``NN_name_files/figure_K.png`` (nbconvert's MarkdownExporter, text outputs as fenced code blocks; figures
numbered in order, so a new text output renames none). The last line of each ``.md`` records the SHA-256
of the source it came from, and ``rendered.json`` the SHA-256 of every file of minicnn the chapter loaded
(its helpers, ``minicnn/tour.py``, among them): ``tests/test_tour.py`` fails when either changed after the
chapter was rendered. Rendering twice gives the same bytes (fixed seeds, PNGs without version metadata).
Nothing is written when a chapter fails.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

TOUR = Path(__file__).resolve().parent
REPO = TOUR.parents[1]
RECORD = TOUR / "rendered.json"        # per chapter: the SHA-256 of each file of minicnn it loaded
# Run in the kernel after the chapter, then dropped: which files of minicnn the chapter loaded.
LOADED = ("import json as _j, sys as _s\n"
          "print(_j.dumps(sorted(m.__file__ for n, m in list(_s.modules.items())\n"
          "                      if (n == 'minicnn' or n.startswith('minicnn.')) and getattr(m, '__file__', None))))")
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


def library_digests(files):
    """{path relative to the repository: SHA-256} for the given files of minicnn, sorted."""
    return {Path(f).resolve().relative_to(REPO).as_posix(): hashlib.sha256(Path(f).read_bytes()).hexdigest()
            for f in sorted(files)}


def read_record():
    return json.loads(RECORD.read_text(encoding="utf-8")) if RECORD.is_file() else {}


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
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import MarkdownExporter

    source = Path(source)
    # tqdm.auto warns inside a kernel without ipywidgets; the chapters show no progress bars anyway
    os.environ["PYTHONWARNINGS"] = "ignore:IProgress not found"
    notebook = jupytext.read(source)
    notebook.cells.append(nbformat.v4.new_code_cell(LOADED))
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(source.parent)}}).execute()
    loaded = json.loads(notebook.cells.pop().outputs[0]["text"])
    for cell in notebook.cells:           # the kernel flushes a cell's prints in chunks that depend on timing: one block
        merged = []
        for output in cell.get("outputs", []):
            if merged and output.output_type == "stream" == merged[-1].output_type and output.name == merged[-1].name:
                merged[-1].text += output.text
            else:
                merged.append(output)
        if "outputs" in cell:
            cell.outputs = merged
    exporter = MarkdownExporter(extra_loaders=[jinja2.DictLoader({"tour.md.j2": TEMPLATE})], template_file="tour.md.j2")
    files_dir = f"{source.stem}_files"
    body, resources = exporter.from_notebook_node(
        notebook, resources={"output_files_dir": files_dir, "unique_key": source.stem})
    body = body.replace(str(REPO) + "/", "")      # no paths of the machine that rendered it
    outputs = {}
    for number, (name, data) in enumerate(sorted(resources.get("outputs", {}).items(), key=lambda kv: body.index(kv[0])), 1):
        stable = f"{files_dir}/figure_{number}.png"          # in order of appearance, whatever the cell numbers
        body = body.replace(f"]({name})", f"]({stable})")
        outputs[stable] = data
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n\n" + stamp(source) + "\n"
    check_markdown(body, source.name)
    folder = source.parent / files_dir
    shutil.rmtree(folder, ignore_errors=True)
    written = []
    for name, data in sorted(outputs.items()):
        path = source.parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    markdown = source.with_suffix(".md")
    markdown.write_text(body, encoding="utf-8")
    record = read_record()
    record[source.stem] = {"source": hashlib.sha256(source.read_bytes()).hexdigest(), "library": library_digests(loaded)}
    RECORD.write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n", encoding="utf-8")
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
        start = time.perf_counter()
        markdown, pngs = render(source, args.timeout)
        size = sum(p.stat().st_size for p in pngs)
        print(f"{markdown.relative_to(REPO)}: {len(pngs)} figures, {size / 1024:.0f} KiB, "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
