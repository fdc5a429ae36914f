"""Command line: ``minicnn COMMAND [options]`` (or ``python -m minicnn COMMAND [options]``).

Commands
--------
train     train the default CNN on MNIST or Fashion-MNIST (the main job; ``--resume``, ``--overwrite``)
sobel     one conv layer learns the Sobel kernels (experiment 1)
edges     edge detectors emerge in a small CNN that classifies edge directions (experiment 2)
explain   walk through a convolution one window at a time
inspect   print a checkpoint's first-layer kernels against the Sobel family
fetch     download and verify a data set (``fetch mnist``, ``fetch fashion-mnist``)
featuremaps, saliency, curves, confusion, predict: what a trained network does inside (minicnn.analysis)
exercises write the layers' math yourself, check it, then train with it (``--mine``)
studio    a local page in the browser: draw a digit, step through a convolution, watch kernels learn

Each command lives in its own module, which exposes ``main(argv) -> int``;
this file only dispatches, so ``python -m minicnn COMMAND --help`` shows the
command's own options.
"""
import importlib
import sys

from minicnn.utils.cli import USER_ERRORS, error_message, run_command

COMMANDS = {
    "train": ("minicnn.experiments.train_mnist", "train the default CNN on MNIST or Fashion-MNIST (the main job)"),
    "sobel": ("minicnn.experiments.learn_sobel", "experiment 1: one conv layer learns the Sobel kernels"),
    "edges": ("minicnn.experiments.edge_classifier", "experiment 2: edge detectors emerge in a small classifier"),
    "explain": ("minicnn.edges.explain", "walk through a convolution one window at a time"),
    "inspect": ("minicnn.edges.inspect_kernels", "show a checkpoint's first-layer kernels against Sobel"),
    "fetch": ("minicnn.data.fetch", "download and verify a data set: fetch mnist, fetch fashion-mnist"),
    "featuremaps": ("minicnn.analysis.featuremaps", "every convolution's output for one image"),
    "saliency": ("minicnn.analysis.saliency", "which pixels the predicted class is most sensitive to"),
    "curves": ("minicnn.analysis.curves", "loss, accuracy and learning rate per epoch of a run"),
    "confusion": ("minicnn.analysis.confusion", "the test-set confusion matrix and the surest mistakes"),
    "predict": ("minicnn.analysis.predict", "classify your own PNG or JPEG pictures"),
    "export": ("minicnn.export.command", "write a checkpoint as ONNX, or as PyTorch weights with the code to load them"),
    "exercises": ("minicnn.exercises.command", "write the layers' math yourself: start, check, solution"),
    "studio": ("minicnn.studio.server", "a local page: draw, step through a convolution, watch kernels learn"),
}


def _usage():
    lines = ["usage: minicnn COMMAND [options]   (or: python -m minicnn COMMAND [options])", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "'minicnn COMMAND --help' shows a command's options."]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"minicnn: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    # The reader may go away (e.g. `python -m minicnn explain | head`): run_command stops quietly, as Unix tools do.
    # User errors become one line and exit code 2 in minicnn.utils.cli.command, which wraps the commands' mains;
    # this is the backstop for a command without it.
    try:
        return run_command(module.main, rest)
    except USER_ERRORS as err:
        print(f"minicnn {name}: error: {error_message(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
