"""Make the pictures of the docs again, from a training run: every picture in docs/ and the command that makes it.

    minicnn train --out /tmp/run                          # a default MNIST run (a few minutes)
    python docs/make_pictures.py /tmp/run                 # writes docs/*.png from it
    python docs/make_pictures.py /tmp/run --only studio.png   # the studio's views, drawn in headless Chromium
    python docs/make_pictures.py --list                   # each picture and its command, nothing run

Each picture comes from one ``minicnn`` command (below, in PICTURES), run on the run's folder into a
temporary folder; the result is then stored small (at most MAX_WIDTH pixels wide, at most COLOURS
colours, PNG optimised), so the pictures cost tens of kilobytes, not hundreds.  Without ``--overwrite``
an existing picture in docs/ is left alone and named.  Needs the plot extra (matplotlib and Pillow).
"""
import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
MAX_WIDTH = 1200
COLOURS = 64

STUDIO = "minicnn studio RUN --port 0 --no-browser"
# each studio view's picture: the link that opens it, and what to wait for before the picture is taken
STUDIO_VIEWS = {
    "studio_stepper.png": ("#view=stepper&image=small&step=5", "#output-grid td"),
    "studio_backward.png": ("#view=backward&image=small&bstep=1&sgd=3&nudge=2,0", "#b-products td"),
    "studio_kernels.png": ("#view=kernels", "#kernel-report canvas"),
    "studio_learn.png": ("#view=learn&task=sobel&seed=0&at=150", "#learn-kernels canvas"),
    "studio_curves.png": ("#view=curves", "#curve-table td"),
}

# picture -> the command that makes it ("RUN" is the run's folder, "OUT" a temporary folder); the commands
# run from a scratch folder holding runs/mnist (the run) and docs/ (this folder), so the titles name those.
PICTURES = {
    "kernels.png": "minicnn inspect RUN --out OUT/kernels.png",
    "evolution.png": "minicnn inspect RUN --evolution --out OUT/evolution.png",
    "featuremaps.png": "minicnn featuremaps RUN --index 0 --out OUT",
    "saliency.png": "minicnn saliency RUN --index 0 --out OUT",
    "confusion.png": "minicnn confusion RUN --out OUT",
    "mistakes.png": "minicnn confusion RUN --out OUT",
    "curves.png": "minicnn curves RUN --out OUT",
    "my_digit_prepared.png": "minicnn predict RUN docs/my_digit.png --show --out OUT",
    # the studio's views at 1280x800 in headless Chromium (needs selenium, chromium, chromedriver): the draw
    # view with a 3 drawn in it, then each other view at the moment STUDIO_VIEWS names (one studio makes them all)
    "studio.png": STUDIO,
    **{f"studio_{view}.png": STUDIO for view in ("stepper", "backward", "kernels", "learn", "curves")},
}
# pictures in docs/ that no command makes, and where they come from
NOT_MADE_HERE = {
    "my_digit.png": "a 3 drawn by hand (300x300), the input of predict above",
}
TAKES_DATA = ("featuremaps", "saliency", "confusion")


def command_for(picture, run, out, data=None):
    """The argv that makes ``picture`` from the run folder ``run`` into the folder ``out``."""
    words = [str(run) if w == "RUN" else w for w in shlex.split(PICTURES[picture])]
    words = [str(out / w[4:]) if w.startswith("OUT/") else str(out) if w == "OUT" else w for w in words]
    if data is not None and words[1] in TAKES_DATA:
        words += ["--data", str(Path(data).resolve())]
    return [sys.executable, "-m", "minicnn"] + words[1:]


def store_small(source, target):
    """Write the PNG ``source`` to ``target`` at most MAX_WIDTH wide and with at most COLOURS colours; -> bytes."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.Resampling.LANCZOS)
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    return target.stat().st_size


def screenshot_studio(argv, cwd, out, width=1280, height=800):
    """Start the studio (``argv``) and save each of its views, as headless Chromium shows them at
    ``width`` x ``height``, in the folder ``out``: studio.png (a 3 drawn) and the pictures of STUDIO_VIEWS."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    studio = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, text=True)
    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}"):
        options.add_argument(flag)
    browser = None

    def wait_for(selector):
        deadline = time.monotonic() + 60
        while not browser.find_elements(By.CSS_SELECTOR, selector) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)                                                              # the last answer, drawn

    try:
        url = next(line.split("serving ")[1].split()[0] for line in studio.stdout if "serving http" in line)
        browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",   # the page itself 1280x800, not the window
                                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        browser.get(url + "#view=draw")
        pad = browser.find_element(By.ID, "pad")
        stroke = ActionChains(browser).move_to_element_with_offset(pad, -50, -70).click_and_hold()
        for dx, dy in [(20, -8), (30, 0), (20, 12), (0, 25), (-25, 15), (-20, 4), (25, 5), (20, 20),
                       (0, 25), (-25, 20), (-40, 0), (-20, -8)]:                  # a 3, top bar to bottom bowl
            stroke = stroke.move_by_offset(dx, dy)
        stroke.release().perform()
        wait_for("#top-classes li")
        (out / "studio.png").write_bytes(browser.get_screenshot_as_png())
        base = url.split("?")[0]                                                   # the cookie stands in for the token
        for picture, (fragment, selector) in STUDIO_VIEWS.items():
            browser.get("about:blank")
            browser.get(base + fragment)
            wait_for(selector)
            (out / picture).write_bytes(browser.get_screenshot_as_png())
    finally:
        if browser is not None:
            browser.quit()
        studio.terminate()
        studio.wait(timeout=10)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("run", nargs="?", help="a training run's folder (checkpoint.npz and metrics.json)")
    parser.add_argument("--data", help="the data set's folder, when it is not the default")
    parser.add_argument("--only", help="comma-separated pictures to make (default: all)")
    parser.add_argument("--overwrite", action="store_true", help="replace the pictures in docs/")
    parser.add_argument("--list", action="store_true", help="print each picture and its command, run nothing")
    args = parser.parse_args(argv)
    if args.list:
        for picture, command in PICTURES.items():
            print(f"{picture:<22} {command}")
        for picture, origin in NOT_MADE_HERE.items():
            print(f"{picture:<22} (not made here: {origin})")
        return 0
    if args.run is None:
        parser.error("give a run's folder (e.g. /tmp/run after 'minicnn train --out /tmp/run'), or --list")
    run = Path(args.run).resolve()
    if not (run / "checkpoint.npz").is_file():
        parser.error(f"expected a run's folder holding checkpoint.npz, got {args.run!r}")
    wanted = list(PICTURES) if args.only is None else args.only.split(",")
    unknown = [p for p in wanted if p not in PICTURES]
    if unknown:
        parser.error(f"unknown pictures {unknown}; expected some of {sorted(PICTURES)}")
    skipped = [p for p in wanted if (DOCS / p).exists() and not args.overwrite]
    if skipped:
        print(f"kept (add --overwrite to replace): {', '.join(skipped)}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "runs").mkdir()
        (Path(tmp) / "runs" / "mnist").symlink_to(run, target_is_directory=True)
        (Path(tmp) / "docs").symlink_to(DOCS, target_is_directory=True)
        out = Path(tmp) / "out"
        out.mkdir()
        done = set()
        for picture in wanted:
            if picture in skipped:
                continue
            argv_ = command_for(picture, "runs/mnist", out, args.data)
            if tuple(argv_) not in done:
                print("$", shlex.join(["minicnn"] + argv_[3:]), flush=True)
                if picture.startswith("studio"):
                    screenshot_studio(argv_, tmp, out)
                else:
                    subprocess.run(argv_, check=True, stdout=subprocess.DEVNULL, cwd=tmp)
                done.add(tuple(argv_))
            size = store_small(out / picture, DOCS / picture)
            print(f"  docs/{picture}: {size / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
