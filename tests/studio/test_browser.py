"""The studio's page in a real browser: headless Chromium through Selenium (skipped, saying why, without them)."""
import json
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

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
    assert len(browser.find_elements(By.CSS_SELECTOR, "#featuremaps canvas")) == 8 + 16
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
