"""In headless Chromium: a multilabel model with per-class defaults answers at them until the slider moves, and the
slider states the validation scores at its value, read from the stored curve."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.integration.http.test_model_pages import _move_threshold, _submit, _wait, browser  # noqa: F401
from tests.integration.server.multilabel_model import CLASSES, export_tags
from tests.integration.server.server_helpers import ThreadServer, settings_for
from zoo.core import decision
from zoo.server.browser import operating, try_it


@pytest.fixture(scope="module")
def tags_origin(tmp_path_factory):
    pytest.importorskip("torch")
    repo = export_tags(tmp_path_factory.mktemp("tags-page"))
    srv = ThreadServer(settings_for(repo)).start()
    yield repo, f"http://127.0.0.1:{srv.server.http_port}"
    srv.stop()


def test_the_slider_shows_validation_scores_and_per_class_defaults_apply_until_it_moves(browser, tags_origin):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    repo, origin = tags_origin
    meta = json.loads((repo / "tags" / "1" / "metadata.json").read_text())
    defaults, curve = meta["default_threshold"], meta["operating_point"]["validation_curve"]
    browser.get(origin + "/models/tags")
    stats = browser.find_element(By.ID, "threshold-stats")
    _wait(browser, lambda d: stats.get_attribute("data-threshold") == "per class")
    assert browser.find_element(By.ID, "threshold-value").text == "per class"

    def said(t_each) -> str:
        parts = [operating.describe(c, operating.at(operating._checked(curve[c]), t)) for c, t in zip(CLASSES, t_each, strict=True)]
        return try_it.STATS_PREFIX + "; ".join(parts) + "."

    assert stats.text == said(defaults)
    x = [1.2, 0.9, 0.4, 0.3]
    browser.find_element(By.ID, "row").send_keys(", ".join(map(str, x)))
    _submit(browser, answers=1)
    shown = [int(e.get_attribute("data-one-hot")) for e in browser.find_elements(By.CSS_SELECTOR, "#probabilities [data-one-hot]")]
    p = [float(e.get_attribute("data-probability")) for e in browser.find_elements(By.CSS_SELECTOR, "#probabilities meter")]
    assert shown == decision.one_hot(np.asarray([p], np.float32), "multilabel", defaults)[0].astype(int).tolist()

    t = _move_threshold(browser, [Keys.HOME] + [Keys.ARROW_RIGHT] * 30)
    assert t == pytest.approx(0.3)
    _wait(browser, lambda d: stats.get_attribute("data-threshold") == "0.3")
    assert stats.text == said([0.3] * 3)
    _submit(browser, answers=2)
    shown = [int(e.get_attribute("data-one-hot")) for e in browser.find_elements(By.CSS_SELECTOR, "#probabilities [data-one-hot]")]
    assert shown == [int(v >= np.float32(0.3)) for v in np.asarray(p, np.float32)]
