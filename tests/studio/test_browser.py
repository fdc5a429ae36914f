"""The studio's page in a real browser: headless Chromium through Selenium (skipped, saying why, without them)."""
import json
import re
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from minicnn.analysis.common import Run

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium (the test extra)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMEDRIVER = Path("/usr/bin/chromedriver")
if shutil.which("chromium") is None or not CHROMEDRIVER.is_file():
    pytest.skip("no browser: install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
                allow_module_level=True)

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,800",
         "--host-resolver-rules=MAP evil.example 127.0.0.1")   # DNS rebinding, simulated: a foreign name, this machine


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="minicnn-chromium-")
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(condition, timeout=30, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def open_page(driver, client, fragment=""):
    driver.get_log("browser")   # what earlier tests left in the console is theirs
    driver.get(client.url + fragment)
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), what="the page to start")


def errors_in_console(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def output_cells(driver):
    return [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#output-grid td")]


def test_stepping_through_the_5x5_example(browser, studio_client):
    open_page(browser, studio_client, "#view=stepper&image=small&kernel=sobel_x&stride=1&padding=0&step=0")
    assert output_cells(browser) == [""] * 9
    for _ in range(9):
        browser.find_element(By.ID, "step-forward").click()
    _, trace = studio_client.post("/api/convolve", {"image": studio_client.studio.info()["images"]["small"],
                                                    "kernel": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
                                                    "stride": 1, "padding": 0})
    expected = [f"{v:g}" for v in np.ravel(trace["output"])]
    assert output_cells(browser) == expected == ["6", "0", "-5", "0", "-2", "-1", "-2", "0", "2"]
    assert "step=9" in browser.current_url            # the moment is in the URL, to share
    assert browser.find_element(By.ID, "sum").text.endswith("= 2")
    browser.find_element(By.ID, "step-back").click()
    assert output_cells(browser) == expected[:8] + [""]
    # the shared URL opens at the same moment
    open_page(browser, studio_client, "#view=stepper&image=small&kernel=sobel_x&stride=1&padding=0&step=4")
    assert output_cells(browser) == expected[:4] + [""] * 5
    assert browser.find_element(By.ID, "engine").text == "computed by minicnn's fast code"
    assert errors_in_console(browser) == []


def test_an_impossible_size_is_explained_on_the_page(browser, studio_client):
    open_page(browser, studio_client, "#view=stepper&image=small&kernel=sobel_x&stride=1&padding=0")
    image_rows = browser.find_element(By.ID, "image-rows")
    image_rows.clear()
    image_rows.send_keys("2\n")
    wait_for(lambda: "impossible" in browser.find_element(By.ID, "formula").text, what="the explanation")
    assert "floor((2 + 2*0 - 3) / 1) + 1 = 0" in browser.find_element(By.ID, "formula").text
    assert errors_in_console(browser) == []


def test_drawing_a_one(browser, studio_client, tmp_path):
    open_page(browser, studio_client, "#view=draw")
    pad = browser.find_element(By.ID, "pad")
    stroke = ActionChains(browser).move_to_element_with_offset(pad, 0, -100).click_and_hold()
    for _ in range(20):
        stroke = stroke.move_by_offset(0, 10)
    stroke.release().perform()
    top = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#top-classes li"), what="a prediction")
    time.sleep(0.5)  # the last request, sent when the pencil lifted
    top = browser.find_elements(By.CSS_SELECTOR, "#top-classes li")
    assert top[0].get_attribute("data-class") == "1", [t.text for t in top]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#featuremaps .maps canvas")) == 8 + 16
    ms = float(browser.find_element(By.ID, "predict-time").get_attribute("data-ms"))
    assert ms > 0
    (tmp_path / "draw.png").write_bytes(browser.get_screenshot_as_png())
    assert errors_in_console(browser) == []


def test_training_50_steps_changes_the_kernels(browser, studio_client):
    open_page(browser, studio_client, "#view=learn&task=sobel&seed=0&steps=50")
    box = browser.find_element(By.ID, "learn-kernels")
    wait_for(lambda: box.get_attribute("data-step") == "0", what="a fresh network")
    before = json.loads(box.get_attribute("data-kernels"))
    button = browser.find_element(By.ID, "train-button")
    assert button.text == "Train 50 steps"
    button.click()
    wait_for(lambda: box.get_attribute("data-step") == "50", what="50 steps")
    after = json.loads(box.get_attribute("data-kernels"))
    assert np.max(np.abs(np.array(after) - np.array(before))) > 0.1
    assert len(box.find_elements(By.TAG_NAME, "canvas")) == 2
    assert errors_in_console(browser) == []


def test_every_view_draws_without_errors_and_the_screenshot_is_not_blank(browser, studio_client, tmp_path):
    open_page(browser, studio_client, "#view=stepper&step=5")
    for view in ("draw", "kernels", "learn", "curves", "stepper"):
        browser.find_element(By.CSS_SELECTOR, f"#tabs button[data-view={view}]").click()
        wait_for(lambda: browser.find_element(By.ID, f"view-{view}").is_displayed(), what=f"the {view} view")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#kernel-report canvas")) == 16, what="the kernels")
    path = tmp_path / "studio.png"
    path.write_bytes(browser.get_screenshot_as_png())
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 800
    assert pixels.std() > 20  # not one flat colour
    assert errors_in_console(browser) == []


# ---------------------------------------------------------------- only its own page can use it (issue 23)

def sessions(client):
    """Training sessions the studio keeps, counted through its API (with the token)."""
    status, info = client.get("/api/info")
    assert status == 200
    return info["sessions"]


def test_the_page_works_through_its_token_link_then_through_its_cookie(browser, studio_client):
    browser.delete_all_cookies()
    browser.get(studio_client.base + "#view=stepper&step=4")   # neither the token nor the cookie
    message = wait_for(lambda: browser.find_element(By.ID, "message").text, what="a message")
    assert "open the link the terminal printed" in message
    assert browser.execute_script("return document.body.dataset.refused") == "1"
    open_page(browser, studio_client, "#view=stepper&image=small&kernel=sobel_x&stride=1&padding=0&step=4")
    assert "token" not in browser.current_url and "step=4" in browser.current_url   # a copied link shares no secret
    assert output_cells(browser)[:4] == ["6", "0", "-5", "0"]
    # a later link in the same browser, without the token (a tour chapter's, a teacher's): the cookie stands in
    browser.get(studio_client.base + "#view=stepper&image=small&kernel=sobel_x&stride=1&padding=0&step=2")
    wait_for(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), what="the page to start")
    assert output_cells(browser)[:3] == ["6", "0", ""]
    assert not [c for c in browser.get_cookies() if not (c["httpOnly"] and c.get("sameSite") == "Strict")]
    assert browser.execute_script("return document.cookie") == ""   # HttpOnly: the page's script never sees it


ATTACK = """<!DOCTYPE html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="form" method="POST" action="{target}" enctype="text/plain" target="sink">
<input name='{{"task": "sobel", "seed": 0, "lr": 0.2, "x": "' value='"}}'></form>
<script>
const done = [];
const finish = (what) => {{ done.push(what); if (done.length === 3) document.title = "done"; }};
document.getElementById("sink").addEventListener("load", () => finish("form"), {{ once: true }});
document.getElementById("form").submit();
fetch("{target}", {{ method: "POST", mode: "no-cors", credentials: "include",
  body: JSON.stringify({{ task: "sobel", seed: 0, lr: 0.2 }}) }}).then(() => finish("fetch"), () => finish("fetch"));
fetch("{target}", {{ method: "POST", mode: "no-cors", credentials: "include", headers: {{ "Content-Type": "text/plain" }},
  body: JSON.stringify({{ task: "sobel", seed: 0, lr: 0.2 }}) }}).then(() => finish("fetch"), () => finish("fetch"));
</script></body></html>"""


@pytest.fixture
def attack_page(studio_client):
    """A page served from another local port, whose script posts to the studio's /api/train/new."""
    page = ATTACK.format(target=studio_client.base + "api/train/new").encode()

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_a_page_from_another_local_port_cannot_create_a_session(browser, studio_client, attack_page):
    """A form POST and no-cors fetches, from a browser that holds the studio's cookie (another port is the same site)."""
    open_page(browser, studio_client)
    cookies = browser.get_cookies()
    before = sessions(studio_client)
    browser.get(attack_page)
    wait_for(lambda: browser.title == "done", what="the attack page's requests")
    time.sleep(0.3)
    assert sessions(studio_client) == before
    assert cookies, "the token link should have left its cookie in the browser, for the attack page to try"


def test_a_rebound_name_gets_nothing(browser, studio_client):
    """evil.example resolved to 127.0.0.1, with the token in the link: every request is refused by its Host."""
    before = sessions(studio_client)
    browser.get(f"http://evil.example:{studio_client.port}/?token={studio_client.token}#view=learn")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "this studio answers requests for" in body and "minicnn studio" not in browser.title
    assert sessions(studio_client) == before


# ---------------------------------------------------------------- the studio as a lesson (issue 29)

def viewport(driver, width=1280, height=800):
    """The page's own size set exactly (a window's size includes what the browser draws around the page)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def cell_texts(driver, table):
    """The texts of a grid's cells, read at one moment (the page redraws its grids)."""
    return driver.execute_script("return [...document.querySelectorAll(arguments[0])].map((td) => td.innerText.trim())",
                                 f"#{table} td")


def kernel_values(driver):
    return [float(v) for v in driver.execute_script(
        "return [...document.querySelectorAll('#kernel-grid input')].map((i) => i.value)")]


def type_into(driver, selector, text):
    """Select what a cell holds and type ``text`` over it (nothing: empty it), then Tab out, as a learner does."""
    from selenium.webdriver.common.keys import Keys

    cell = driver.find_element(By.CSS_SELECTOR, selector)
    cell.click()
    cell.send_keys(Keys.CONTROL, "a")
    cell.send_keys((text or Keys.BACKSPACE) + Keys.TAB)


def select(driver, element_id, value):
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, element_id)).select_by_value(value)


def test_a_learned_kernel_picked_from_the_menu_is_that_kernel(browser, studio_client, trained_run):
    """Bug 1: picked on a fresh page, it showed sobel_x; the filter menu had no value."""
    open_page(browser, studio_client, "#view=stepper&image=small")
    select(browser, "kernel-preset", "learned")
    wait_for(lambda: "kernel=L0F0C0" in browser.current_url, what="the learned kernel in the URL")
    assert browser.find_element(By.ID, "learned-picker").is_displayed()
    assert browser.find_element(By.ID, "kernel-filter").get_attribute("value") == "0"
    W = Run(trained_run).model.layers[0].params["W"]
    wait_for(lambda: np.allclose(kernel_values(browser), W[0, 0].ravel(), atol=1e-4), what="filter 0's weights")
    select(browser, "kernel-filter", "5")
    wait_for(lambda: np.allclose(kernel_values(browser), W[5, 0].ravel(), atol=1e-4), what="filter 5's weights")
    assert "kernel=L0F5C0" in browser.current_url
    assert errors_in_console(browser) == []


@pytest.mark.parametrize("task", ["foo", "Sobel"])
def test_an_unknown_task_in_the_link_is_said_and_the_page_works(browser, studio_client, task):
    """Bug 2: the page stayed blank with a TypeError."""
    open_page(browser, studio_client, f"#view=learn&task={task}")
    box = browser.find_element(By.ID, "learn-kernels")
    wait_for(lambda: box.get_attribute("data-step") == "0", what="a fresh network")
    assert browser.find_element(By.ID, "task").get_attribute("value") == "sobel"
    error = browser.find_element(By.ID, "learn-error").text
    if task == "foo":
        assert '"foo"' in error and "sobel, edges, mnist" in error
    else:
        assert error == ""       # the same task written with a capital
    assert errors_in_console(browser) == []


def test_an_error_names_the_cell_stays_beside_it_and_clears_when_fixed(browser, studio_client):
    """Bug 3: banners that never cleared, followed to other views, over the previous result, saying "got None"."""
    open_page(browser, studio_client, "#view=stepper&image=small&kernel=c:1,0,-1;1,0,-1;1,0,-1&step=0")
    type_into(browser, "#image-grid td[data-r='1'][data-c='2'] input", "")
    wait_for(lambda: browser.execute_script("return [...document.querySelectorAll('.field-error, #message')]"
                                            ".some((e) => e.offsetParent !== null && e.textContent)"), what="the error")
    assert "None" not in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_element(By.ID, "image-error").text == "image: row 2, column 3 is empty"
    assert "bad" in browser.find_element(By.CSS_SELECTOR, "#image-grid td[data-r='1'][data-c='2']").get_attribute("class")
    assert "".join(cell_texts(browser, "output-grid")) == "" and browser.find_element(By.ID, "sum").text == ""
    assert "None" not in browser.find_element(By.TAG_NAME, "body").text
    assert not browser.find_element(By.ID, "message").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=learn]").click()
    wait_for(lambda: browser.find_element(By.ID, "view-learn").is_displayed(), what="the learn view")
    assert not browser.find_element(By.ID, "image-error").is_displayed() and not browser.find_element(By.ID, "message").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=stepper]").click()
    type_into(browser, "#image-grid td[data-r='1'][data-c='2'] input", "2")
    wait_for(lambda: browser.find_element(By.ID, "conv-check").text, what="the result again")
    assert browser.find_element(By.ID, "image-error").text == ""
    for _ in range(9):
        browser.find_element(By.ID, "step-forward").click()
    assert cell_texts(browser, "output-grid") == ["-4", "2", "4", "0", "0", "0", "0", "0", "0"]
    # a cell that is not a number, in the kernel this time
    type_into(browser, "#kernel-grid td[data-r='2'][data-c='0'] input", "x")
    wait_for(lambda: browser.find_element(By.ID, "kernel-error").text == 'kernel: row 3, column 1 is not a number ("x")',
             what="the kernel's error")
    assert "".join(cell_texts(browser, "output-grid")) == ""      # no earlier result left under the error
    assert errors_in_console(browser) == []


def test_learned_values_fit_their_cells_and_the_check_is_short(browser, studio_client):
    """Bug 4: "-0.23" showed in part; the Conv2D check printed 4.440892098500626e-16."""
    open_page(browser, studio_client, "#view=stepper&image=small&kernel=L0F0C0&step=3")
    inputs = browser.find_elements(By.CSS_SELECTOR, "#kernel-grid input")
    assert len(inputs) == 9 and any(len(i.get_attribute("value")) >= 6 for i in inputs)
    for i in inputs:
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", i), i.get_attribute("value")
    check = browser.find_element(By.ID, "conv-check").text
    assert check.startswith("minicnn's Conv2D gives the same output") and not re.search(r"\d{6,}", check), check
    assert errors_in_console(browser) == []


def coloured_pixels(driver, canvas_id, rgb, x_from, x_to):
    """How many pixels of the canvas have the colour ``rgb`` (within 40) between the two columns."""
    return driver.execute_script("""
        const c = document.getElementById(arguments[0]), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let y = 0; y < c.height; y++) for (let x = arguments[2]; x < arguments[3]; x++) {
          const i = 4 * (y * c.width + x);
          const far = Math.abs(d[i] - arguments[1][0]) + Math.abs(d[i + 1] - arguments[1][1]) + Math.abs(d[i + 2] - arguments[1][2]);
          if (far < 40 && d[i + 3] > 0) n++;
        }
        return n;""", canvas_id, rgb, x_from, x_to)


def test_the_curves_of_a_one_epoch_run_and_small_losses_show(browser, studio_client):
    """Bug 5: nothing drawn for one epoch, 16-digit floats in the table, a live loss read as 0.000."""
    open_page(browser, studio_client, "#view=curves")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#curve-table td")) >= 6, what="the table")
    assert coloured_pixels(browser, "curve-loss", [47, 128, 237], 60, 260) > 10      # the training loss's point
    assert coloured_pixels(browser, "curve-accuracy", [235, 87, 87], 60, 260) > 10   # the test accuracy's
    cells = cell_texts(browser, "curve-table")
    assert cells and not [c for c in cells if re.search(r"\d{6,}", c)], cells
    open_page(browser, studio_client, "#view=learn&task=sobel&seed=0&steps=400&lr=0.2")
    box = browser.find_element(By.ID, "learn-kernels")
    wait_for(lambda: box.get_attribute("data-step") == "0", what="a fresh network")
    browser.find_element(By.ID, "train-button").click()
    wait_for(lambda: box.get_attribute("data-step") == "400", what="400 steps")
    loss = float(browser.find_element(By.ID, "train-status").get_attribute("data-loss"))
    assert 0 < loss < 1e-5
    assert "loss 0.000" not in browser.find_element(By.ID, "train-status").text
    assert coloured_pixels(browser, "loss-curve", [47, 128, 237], 300, 410) > 10     # the curve's last steps
    assert errors_in_console(browser) == []


def draw_a_stroke(driver):
    pad = driver.find_element(By.ID, "pad")
    stroke = ActionChains(driver).move_to_element_with_offset(pad, 0, -100).click_and_hold()
    for _ in range(20):
        stroke = stroke.move_by_offset(0, 10)
    stroke.release().perform()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#top-classes li"), what="a prediction")


def test_a_crop_of_the_drawing_is_called_so(browser, studio_client):
    """Bug 6: "Step through a crop" labelled the crop "custom"."""
    open_page(browser, studio_client, "#view=draw")
    draw_a_stroke(browser)
    browser.find_element(By.ID, "to-stepper").click()
    wait_for(lambda: browser.find_element(By.ID, "view-stepper").is_displayed(), what="the stepper")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#image-grid td")) == 100, what="the 10x10 crop")
    preset = browser.find_element(By.ID, "image-preset")
    assert preset.get_attribute("value") == "drawing"
    assert browser.execute_script("return arguments[0].selectedOptions[0].text", preset) == "a crop of your drawing"
    assert "image=d%3A" in browser.current_url or "image=d:" in browser.current_url
    # the link opens the same crop, still called a crop of the drawing
    open_page(browser, studio_client, "#" + browser.current_url.split("#", 1)[1])
    assert browser.find_element(By.ID, "image-preset").get_attribute("value") == "drawing"
    assert errors_in_console(browser) == []


def rect(driver, element_id):
    return driver.execute_script("const r = document.getElementById(arguments[0]).getBoundingClientRect();"
                                 "return [r.left, r.top, r.width, r.height, r.bottom, r.right];", element_id)


def test_the_layout_does_not_jump_and_large_grids_fit(browser, studio_client):
    """Bug 7: grids changed width between editing and stepping, banners pushed the page down, large grids
    pushed the output below the fold (at 1280x800)."""
    viewport(browser)
    try:
        open_page(browser, studio_client, "#view=stepper&image=step&kernel=L0F0C0&step=0")
        before = [rect(browser, i) for i in ("image-grid", "kernel-grid", "output-grid")]
        for _ in range(3):
            browser.find_element(By.ID, "step-forward").click()
        assert [rect(browser, i) for i in ("image-grid", "kernel-grid", "output-grid")] == before
        type_into(browser, "#image-grid td[data-r='0'][data-c='0'] input", "")
        wait_for(lambda: browser.find_element(By.ID, "image-error").text, what="the error")
        assert rect(browser, "image-grid")[:4] == before[0][:4] and rect(browser, "kernel-grid")[:4] == before[1][:4]
        # the largest image the stepper takes, with the most padding: everything on the screen
        big = ";".join([",".join(["1"] * 16)] * 16)
        open_page(browser, studio_client, f"#view=stepper&image=c:{big}&kernel=sobel_x&padding=8&step=5")
        for element_id in ("image-grid", "kernel-grid", "products-grid", "output-grid"):
            left, top, width, height, bottom, right = rect(browser, element_id)
            assert bottom <= 800 and right <= 1280, (element_id, bottom, right)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 1280
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert errors_in_console(browser) == []


def test_the_5x5_example_opens_with_002s_kernel_and_map(browser, studio_client):
    """Bug 8: the example opened with sobel_x, the negation of 002's map, and nothing said why."""
    open_page(browser, studio_client, "#view=stepper&image=small&step=9")
    assert browser.find_element(By.ID, "kernel-preset").get_attribute("value") == "edge_bright_left"
    assert kernel_values(browser) == [1, 0, -1] * 3
    assert output_cells(browser) == ["-4", "2", "4", "0", "0", "0", "0", "0", "0"]     # 002's feature map
    labels = browser.execute_script("return Object.fromEntries([...document.getElementById('kernel-preset').options]"
                                    ".map((o) => [o.value, o.text]))")
    assert labels["edge_bright_left"].startswith("bright on the left")
    assert labels["edge_bright_right"].startswith("bright on the right")
    # the other one, and the older name of it, which links may still carry
    for name in ("edge_bright_right", "edge_vertical"):
        open_page(browser, studio_client, f"#view=stepper&image=small&kernel={name}&step=9")
        assert kernel_values(browser) == [-1, 0, 1] * 3
        assert output_cells(browser) == ["4", "-2", "-4", "0", "0", "0", "0", "0", "0"]
        assert browser.find_element(By.ID, "kernel-preset").get_attribute("value") == "edge_bright_right"
    # the 7x7 example opens with chapter 003's Sobel x
    open_page(browser, studio_client, "#view=stepper&image=step")
    assert browser.find_element(By.ID, "kernel-preset").get_attribute("value") == "sobel_x"
    assert errors_in_console(browser) == []


# ---------------------------------------------------------------- the backward stepper

def four(v):
    """A number as the page writes it: up to 4 decimals, no trailing zeros, "0" for a zero of either sign."""
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def small_backward(kernel=((1, 0, -1),) * 3):
    """Conv2D's own forward and backward of the Sobel task on the 5x5 example: (x, delta, dW)."""
    from minicnn.nn.conv import Conv2D
    from minicnn.nn.losses import mse

    x = np.array([[1, 2, 3, 0, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0], [2, 1, 0, 1, 2], [0, 1, 2, 3, 1]], dtype=np.float64)
    conv = Conv2D(1, 1, 3, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    conv.params["W"][...] = kernel
    target = np.array([[6, 0, -5], [0, -2, -1], [-2, 0, 2]], dtype=np.float64)
    _, delta = mse(conv.forward(x[None, None]), target[None, None])
    conv.backward(delta)
    return x, delta[0, 0], conv.grads["W"][0, 0]


def test_the_backward_stepper_first_cell_is_conv2d_backward(browser, studio_client):
    open_page(browser, studio_client, "#view=backward&image=small")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#b-delta td"), what="the backward pass")
    assert browser.find_element(By.ID, "b-kernel").get_attribute("value") == "edge_bright_left"
    x, delta, dW = small_backward()
    browser.find_element(By.ID, "b-step-forward").click()
    products = [float(td.get_attribute("data-value")) for td in browser.find_elements(By.CSS_SELECTOR, "#b-products td")]
    np.testing.assert_allclose(products, (delta * x[:3, :3]).ravel(), rtol=1e-12, atol=1e-15)
    assert cell_texts(browser, "b-products") == [four(v) for v in (delta * x[:3, :3]).ravel()]
    total = float(browser.find_element(By.ID, "b-sum").get_attribute("data-total"))
    assert total == pytest.approx(dW[0, 0], rel=1e-12) and total == pytest.approx(sum(products), rel=1e-12)
    assert browser.find_element(By.ID, "b-sum").text.startswith("dL/dW[0, 0] = ")
    assert " ".join(browser.find_element(By.ID, "b-sum").text.split()).endswith("= 5.5556 (Conv2D.backward: 5.5556)")
    assert cell_texts(browser, "b-grad")[0] == "5.5556" and cell_texts(browser, "b-grad")[1:] == [""] * 8
    assert "bstep=1" in browser.current_url
    # pointing at the product in row 1, column 2 outlines delta[1, 2] and x[1, 2] (the window at (0, 0))
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, "#b-products td[data-r='1'][data-c='2']")).perform()
    assert "pick" in browser.find_element(By.CSS_SELECTOR, "#b-delta td[data-r='1'][data-c='2']").get_attribute("class")
    assert "pick" in browser.find_element(By.CSS_SELECTOR, "#b-input td[data-r='1'][data-c='2']").get_attribute("class")
    # Step back: the cell empties again; stepping on fills the rest, each from Conv2D.backward
    browser.find_element(By.ID, "b-step-back").click()
    assert cell_texts(browser, "b-grad") == [""] * 9 and "".join(cell_texts(browser, "b-products")) == ""
    assert "bstep=0" in browser.current_url
    for _ in range(9):
        browser.find_element(By.ID, "b-step-forward").click()
    grad = [float(td.get_attribute("data-value")) for td in browser.find_elements(By.CSS_SELECTOR, "#b-grad td")]
    np.testing.assert_allclose(grad, dW.ravel(), rtol=1e-12)
    # dL/dx: the full convolution, the kernel shown turned
    select(browser, "b-phase", "dx")
    assert browser.find_element(By.ID, "b-flip-box").is_displayed()
    assert cell_texts(browser, "b-flipped") == ["-1", "0", "1"] * 3
    browser.find_element(By.ID, "b-step-forward").click()
    assert browser.find_element(By.ID, "b-sum").text.startswith("dL/dx[0, 0] = ")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#b-input td")) == 49     # delta 3x3 padded by 2 rings
    assert errors_in_console(browser) == []


def test_one_sgd_step_raises_the_cosine_and_the_nudge_measures_the_gradient(browser, studio_client):
    open_page(browser, studio_client, "#view=backward&image=small")
    label = wait_for(lambda: browser.find_element(By.ID, "b-sgd-label").get_attribute("data-cosine") and
                     browser.find_element(By.ID, "b-sgd-label"), what="the SGD panel")
    before, promised = float(label.get_attribute("data-cosine")), float(label.get_attribute("data-next"))
    next_kernel = cell_texts(browser, "b-next")
    browser.find_element(By.ID, "b-sgd").click()
    wait_for(lambda: "sgd=1" in browser.current_url and float(browser.find_element(By.ID, "b-sgd-label")
                                                              .get_attribute("data-cosine")) != before, what="one SGD step")
    after = float(browser.find_element(By.ID, "b-sgd-label").get_attribute("data-cosine"))
    assert after > before and after == pytest.approx(promised)
    assert cell_texts(browser, "b-now") == next_kernel            # the kernel moved to where the step said
    # the nudge: click weight (2, 0) of the kernel now; eps = 1e-3
    browser.find_element(By.CSS_SELECTOR, "#b-now td[data-r='2'][data-c='0']").click()
    nudge = browser.find_element(By.ID, "b-nudge")
    wait_for(lambda: nudge.get_attribute("data-gradient"), what="the nudge")
    eps, measured = float(nudge.get_attribute("data-eps")), float(nudge.get_attribute("data-delta-loss"))
    gradient = float(nudge.get_attribute("data-gradient"))
    assert eps == 1e-3 and ("nudge=2%2C0" in browser.current_url or "nudge=2,0" in browser.current_url)
    _, _, dW = small_backward(np.array([[1, 0, -1]] * 3, dtype=np.float64) - 0.05 * small_backward()[2])
    assert gradient == pytest.approx(dW[2, 0], rel=1e-9)
    assert abs(measured / eps - gradient) <= 1e-3 * abs(gradient)
    assert errors_in_console(browser) == []


# ---------------------------------------------------------------- learning you can watch

def test_the_timeline_restores_an_earlier_step_exactly_and_reset_keeps_the_weights(browser, studio_client):
    open_page(browser, studio_client, "#view=learn&task=sobel&seed=0&steps=10&lr=0.2")
    box = browser.find_element(By.ID, "learn-kernels")
    wait_for(lambda: box.get_attribute("data-step") == "0", what="a fresh network")
    assert browser.find_element(By.ID, "speed").get_attribute("value") == "15"
    start = box.get_attribute("data-kernels")
    seen = {}
    for step in (10, 20, 30):
        browser.find_element(By.ID, "train-button").click()
        wait_for(lambda: box.get_attribute("data-step") == str(step), what=f"step {step}")
        seen[step] = (box.get_attribute("data-kernels"), box.get_attribute("data-loss"))
    timeline = browser.find_element(By.ID, "timeline")
    assert timeline.get_attribute("max") == "30"
    browser.execute_script("arguments[0].value = 10; arguments[0].dispatchEvent(new Event('input'))", timeline)
    wait_for(lambda: box.get_attribute("data-step") == "10", what="step 10 again")
    assert (box.get_attribute("data-kernels"), box.get_attribute("data-loss")) == seen[10]
    assert "at=10" in browser.current_url
    # the link opens at that step, trained again from the seed: the same kernels
    open_page(browser, studio_client, "#" + browser.current_url.split("#", 1)[1])
    box = browser.find_element(By.ID, "learn-kernels")
    wait_for(lambda: box.get_attribute("data-step") == "10", what="step 10 from the link")
    assert box.get_attribute("data-kernels") == seen[10][0]
    # Reset: the same first weights; another seed: others
    browser.find_element(By.ID, "train-reset").click()
    wait_for(lambda: box.get_attribute("data-step") == "0", what="a reset")
    assert box.get_attribute("data-kernels") == start
    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("1\t")
    wait_for(lambda: box.get_attribute("data-kernels") != start and box.get_attribute("data-step") == "0", what="seed 1")
    assert "seed=1" in browser.current_url
    assert errors_in_console(browser) == []


def test_play_trains_at_the_chosen_speed(browser, studio_client):
    open_page(browser, studio_client, "#view=learn&task=sobel&seed=0&speed=15")
    box = browser.find_element(By.ID, "learn-kernels")
    wait_for(lambda: box.get_attribute("data-step") == "0", what="a fresh network")
    browser.find_element(By.ID, "train-play").click()
    time.sleep(2.0)
    browser.find_element(By.ID, "train-pause").click()
    steps = int(box.get_attribute("data-step"))
    assert 10 <= steps <= 45, steps          # 15 a second for 2 s: about 30, never all 200+ at once
    select(browser, "speed", "150")
    assert "speed=150" in browser.current_url
    assert errors_in_console(browser) == []


def test_every_view_explains_itself_at_1280x800_without_errors(browser, studio_client, tmp_path):
    from PIL import Image

    viewport(browser)
    try:
        open_page(browser, studio_client, "#view=stepper&image=small&step=5")
        for view, ready in (("stepper", "#output-grid td"), ("backward", "#b-delta td"), ("draw", "#pad"),
                            ("kernels", "#kernel-report canvas"), ("learn", "#learn-kernels canvas"),
                            ("curves", "#curve-table td")):
            browser.find_element(By.CSS_SELECTOR, f"#tabs button[data-view={view}]").click()
            wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, f"#view-{view} {ready}"), what=f"the {view} view")
            time.sleep(0.3)
            intro = browser.find_element(By.CSS_SELECTOR, f"#view-{view} .intro").text
            assert 1 <= intro.count(". ") + 1 <= 3 and len(intro) > 80, (view, intro)
            path = tmp_path / f"{view}.png"
            path.write_bytes(browser.get_screenshot_as_png())
            pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
            assert pixels.shape[:2] == (800, 1280) and pixels.std() > 20, view
            legends = [e for e in browser.find_elements(By.CSS_SELECTOR, f"#view-{view} .legend") if e.text]
            if view in ("stepper", "backward", "kernels", "learn"):
                assert legends and all(re.search(r"-?\d", e.text) for e in legends), view
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert errors_in_console(browser) == []


def test_the_two_steppers_share_the_image(browser, studio_client):
    open_page(browser, studio_client, "#view=stepper&image=small")
    select(browser, "image-preset", "step")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#image-grid td")) == 49, what="the 7x7 image")
    assert browser.find_element(By.ID, "kernel-preset").get_attribute("value") == "sobel_x"   # 003's kernel with 003's image
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=backward]").click()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#b-input td")) == 49, what="the 7x7 image, backward")
    assert browser.find_element(By.ID, "b-image").get_attribute("value") == "step"
    select(browser, "b-image", "small")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#b-input td")) == 25, what="the 5x5 image, backward")
    browser.find_element(By.CSS_SELECTOR, "#tabs button[data-view=stepper]").click()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#image-grid td")) == 25, what="the 5x5 image again")
    assert errors_in_console(browser) == []


def test_a_backward_link_takes_the_links_kernel(browser, studio_client):
    """A link such as the tour's, naming a preset with kernel=: the backward stepper starts from it."""
    open_page(browser, studio_client, "#view=backward&image=small&kernel=edge_bright_right")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#b-delta td"), what="the backward pass")
    assert browser.find_element(By.ID, "b-kernel").get_attribute("value") == "edge_bright_right"
    assert cell_texts(browser, "b-now") == ["-1", "0", "1"] * 3 and cell_texts(browser, "b-fmap")[:3] == ["4", "-2", "-4"]
    assert errors_in_console(browser) == []
