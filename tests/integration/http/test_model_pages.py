"""The model browser in a real browser: headless Chromium opens /, follows a model, fills the try-it form (one field
per feature, then a pasted row), moves the threshold, and the answer it shows is onnxruntime's for that row; the
curl command it shows gets the same answer; at desktop and at phone width; no request leaves the server.

Skipped without selenium, chromium or chromedriver, except under CI, where they must be there.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.conftest import in_ci
from tests.integration.http.http_helpers import call
from tests.integration.server.server_helpers import ThreadServer, reference, settings_for
from zoo.core import decision, repository

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
HANG_GUARD_S = 60  # how long a wait may last before the page counts as broken: a hang guard, never a race to win
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--window-size=1280,1000")
NETWORK = ("http", "https", "ws", "wss", "ftp")  # URL schemes that leave the browser
PHONE = {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True}


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"{reason} (CI must run the browser test)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium from the system's packages, with a fresh profile; logs the page's network and console."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed: pip install -e '.[dev]'")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            _missing(f"{path} is missing: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with the driver's path too, selenium never looks for (or downloads) either
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(HANG_GUARD_S)
    driver.set_script_timeout(HANG_GUARD_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def origin(browsed_repo):
    """The base URL of a server over the browser's repository."""
    srv = ThreadServer(settings_for(browsed_repo)).start()
    yield f"http://127.0.0.1:{srv.server.http_port}"
    srv.stop()


def test_try_it_on_iris_answers_as_onnxruntime(browser, origin, browsed_repo, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _logs(browser)  # start from clean logs
    browser.get(origin + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Model zoo")
    _screenshot(browser, tmp_path, "index")
    browser.find_element(By.CSS_SELECTOR, "main table a[href='/models/iris']").click()
    _wait(browser, lambda d: d.current_url == origin + "/models/iris")
    card = repository.read_card(browsed_repo, "iris", 3)  # the default: the highest version
    assert "version 3" in browser.find_element(By.TAG_NAME, "h1").text
    images = browser.find_elements(By.CSS_SELECTOR, "figure img")
    assert len(images) == len(repository.figures(card.extra)) >= 2  # the training curve, the confusion matrix, ...
    for img in images:  # the figures the run drew, served by the server, decoded by the browser
        _wait(browser, lambda d, img=img: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img))

    # one field per feature, found by its label; the threshold moved with the keyboard
    x = np.asarray([5.9, 3.0, 5.1, 1.8], np.float32)
    for name, value in zip(card.feature_names, ["5.9", "3.0", "5.1", "1.8"], strict=True):
        field = browser.find_element(By.ID, browser.find_element(By.XPATH, f"//label[normalize-space()='{name}']").get_attribute("for"))
        field.send_keys(value)
    t = _move_threshold(browser, [Keys.ARROW_RIGHT] * 60)
    _submit(browser, answers=1)
    _check_answer(browser, browsed_repo, card, x, t)
    _check_curl(browser, origin, card, x, t)
    _screenshot(browser, tmp_path, "iris-fields")

    # a pasted CSV row wins over the fields
    browser.find_element(By.ID, "row").send_keys("6.3, 2.8, 4.9, 1.5")
    t = _move_threshold(browser, [Keys.HOME] + [Keys.ARROW_RIGHT] * 95)
    assert t == pytest.approx(0.95)
    _submit(browser, answers=2)
    _check_answer(browser, browsed_repo, card, np.asarray([6.3, 2.8, 4.9, 1.5], np.float32), t)
    _screenshot(browser, tmp_path, "iris-pasted-row")

    # an error clears the previous answer: beside the error it would read as this request's answer
    row = browser.find_element(By.ID, "row")
    row.clear()
    row.send_keys("6.3, 2.8, 4.9")
    browser.find_element(By.CSS_SELECTOR, "#try button[type=submit]").click()
    _wait(browser, lambda d: d.find_element(By.ID, "try-error").text)
    assert "this model takes 4" in browser.find_element(By.ID, "try-error").text
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert browser.find_element(By.ID, "label").get_attribute("textContent") == ""
    assert not browser.find_elements(By.CSS_SELECTOR, "#probabilities tr")
    _screenshot(browser, tmp_path, "iris-error")
    _assert_only_the_server(browser, origin)


def test_a_784_feature_model_at_phone_width(browser, origin, browsed_repo, tmp_path):
    from selenium.webdriver.common.by import By

    _logs(browser)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        browser.get(origin + "/")
        _wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Model zoo")
        assert browser.execute_script("return window.innerWidth") == PHONE["width"]
        _assert_fits(browser)
        _screenshot(browser, tmp_path, "index-phone")
        browser.find_element(By.CSS_SELECTOR, "main table a[href='/models/wide']").click()
        _wait(browser, lambda d: d.current_url == origin + "/models/wide")
        card = repository.read_card(browsed_repo, "wide", 1)
        _assert_fits(browser)
        _screenshot(browser, tmp_path, "wide-phone")

        # the pasted row is the main way in; the 784 fields wait behind a closed <details>
        details = browser.find_element(By.ID, "fields")
        assert details.get_attribute("open") is None and len(details.find_elements(By.CSS_SELECTOR, "input[data-feature]")) == 784
        x = np.round(np.random.default_rng(3).normal(0, 1, card.num_features), 3).astype(np.float32)
        browser.find_element(By.ID, "row").send_keys(",".join(f"{v:g}" for v in x))
        _submit(browser, answers=1)
        _check_answer(browser, browsed_repo, card, x, card.default_threshold)
        _assert_fits(browser)
        _screenshot(browser, tmp_path, "wide-phone-pasted-row")

        # ... and the fields still work: training means filled in, one value typed over, the row cleared
        details.find_element(By.TAG_NAME, "summary").click()
        browser.find_element(By.ID, "fill-means").click()
        first = browser.find_element(By.ID, "feature-0")
        first.clear()
        first.send_keys("2.5")
        browser.find_element(By.ID, "row").clear()
        _submit(browser, answers=2)
        values = browser.execute_script("return Array.from(document.querySelectorAll('input[data-feature]'), f => f.value)")
        x = np.asarray([float(v) for v in values], np.float32)
        assert x[0] == np.float32(2.5) and len(x) == card.num_features
        _check_answer(browser, browsed_repo, card, x, card.default_threshold)
        _assert_fits(browser)
        _screenshot(browser, tmp_path, "wide-phone-fields")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    _assert_only_the_server(browser, origin)


def _wait(driver, condition):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, HANG_GUARD_S).until(condition)


def _move_threshold(driver, keys) -> float:
    """Press keys on the threshold slider; its value, after checking the page shows it."""
    from selenium.webdriver.common.by import By

    slider = driver.find_element(By.ID, "threshold")
    slider.send_keys(*keys)
    t = float(slider.get_attribute("value"))
    assert driver.find_element(By.ID, "threshold-value").text == f"{t:.2f}"
    return t


def _submit(driver, answers: int) -> None:
    """Press Predict and wait until the page has drawn its answers-th answer."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#try button[type=submit]").click()
    _wait(driver, lambda d: d.find_element(By.ID, "result").get_attribute("data-answers") == str(answers)
          or d.find_element(By.ID, "try-error").text)
    assert not driver.find_element(By.ID, "try-error").text, driver.find_element(By.ID, "try-error").text


def _check_answer(driver, repo: Path, card, x: np.ndarray, t: float) -> None:
    """The probabilities, one-hot decision and label shown are onnxruntime's for row x at threshold t."""
    from selenium.webdriver.common.by import By

    shown = driver.execute_script(
        "return Array.from(document.querySelectorAll('#probabilities tr'), r => [r.querySelector('th').textContent,"
        " r.querySelector('meter').dataset.probability, r.querySelector('[data-one-hot]').dataset.oneHot])")
    p = reference(repo, card.name, card.version, x[None, :])["probabilities"]
    assert [row[0] for row in shown] == card.class_names
    np.testing.assert_allclose([float(row[1]) for row in shown], p[0], atol=1e-6)
    assert [float(row[2]) for row in shown] == decision.one_hot(p, card.task, t)[0].tolist()
    label = int(decision.labels(p, card.task, t)[0])
    shown_label = driver.find_element(By.ID, "label")
    assert int(shown_label.get_attribute("data-label")) == label
    assert shown_label.text == (card.class_names[label] if label >= 0 else "no class (the top probability is below the threshold)")


def _check_curl(driver, origin: str, card, x: np.ndarray, t: float) -> None:
    """The curl command shown sends this request (row, threshold) and gets the answer the page shows."""
    from selenium.webdriver.common.by import By

    command = driver.find_element(By.ID, "curl").text
    args = shlex.split(command.replace("\\\n", " "))  # what the shell makes of it
    url, body = args[args.index("POST") + 1], args[args.index("-d") + 1]
    assert url == f"{origin}/v2/models/{card.name}/versions/{card.version}/infer"
    doc = json.loads(body)
    assert doc["parameters"] == {"threshold": t}
    np.testing.assert_array_equal(np.asarray(doc["inputs"][0]["data"], np.float32), x)
    if shutil.which("curl"):  # the command itself, through a shell, when curl is installed
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=HANG_GUARD_S, check=True)
        answer = json.loads(done.stdout)
    else:
        answer = call(int(url.split(":")[2].split("/")[0]), "POST", url.split(origin)[1], body,
                      {"Content-Type": "application/json"}).json()
    probabilities = next(o["data"] for o in answer["outputs"] if o["name"] == "probabilities")
    shown = driver.execute_script("return Array.from(document.querySelectorAll('#probabilities meter'), m => m.dataset.probability)")
    assert probabilities == [float(v) for v in shown]


def _assert_fits(driver) -> None:
    """Nothing is wider than the window: no sideways scrolling of the page (wide tables scroll inside their box)."""
    width, inner = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width} px wide in a {inner} px window"


def _logs(driver) -> tuple[list[str], list[dict]]:
    """(URLs the page requested, console entries) since the last call."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls, driver.get_log("browser")


def _assert_only_the_server(driver, origin: str, called: str = "/infer") -> None:
    """Every request over the network went to the server, and the console holds no error (a CSP violation or a failed
    load logs one). chrome://, data: and about: URLs are the browser's own (its blank tab, its form controls' icons),
    off the network; our pages' CSP refuses data: anyway, and the console check would show it."""
    urls, console = _logs(driver)
    elsewhere = [u for u in urls if urlsplit(u).scheme in NETWORK and not u.startswith(origin + "/")]
    assert not elsewhere, elsewhere
    assert {origin + "/assets/try.js", origin + "/assets/zoo.css"} <= set(urls) and any(u.endswith(called) for u in urls)
    assert not [e for e in console if e["level"] == "SEVERE"], console


def _screenshot(driver, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def test_the_monitoring_section_redraws_itself_as_requests_drift(browser, origin, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.integration.http.http_helpers import infer, infer_json
    from zoo.data import get_recipe

    data = get_recipe("iris").load()
    _logs(browser)
    browser.get(origin + "/models/iris/versions/1")
    section = browser.find_element(By.ID, "monitor")
    port = int(urlsplit(origin).port)
    # the training rows with one feature moved far: the page, already open, must show it without a reload
    shifted = data.X_train.astype(np.float32).copy()
    shifted[:, 3] += 2.5
    assert infer(port, "iris", infer_json(shifted), version="1").status == 200
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#drift-rows tr th").text == data.feature_names[3])
    first = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#drift-rows tr:first-child > *")]
    assert first[0] == data.feature_names[3] and first[1] == "shifted" and float(first[2]) > 1.0
    assert int(first[3].replace(",", "")) >= 0.9 * len(shifted)  # values beyond the training maximum
    assert int(section.get_attribute("data-refreshes")) >= 1  # redrawn by the script, not reloaded
    summary = browser.find_element(By.ID, "monitor-summary").text
    assert f"{len(shifted):,} rows answered" in summary or "rows answered" in summary
    labels = [r.find_element(By.TAG_NAME, "th").text for r in browser.find_elements(By.CSS_SELECTOR, "#label-rows tr")]
    assert labels == [*data.class_names, "no class"]
    _screenshot(browser, tmp_path, "iris-monitoring")
    _assert_only_the_server(browser, origin, called="/monitor.json")
