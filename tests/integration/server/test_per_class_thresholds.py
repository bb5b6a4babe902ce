"""A multilabel model with per-class default thresholds: its page, its answers at its defaults and at per-request
per-class thresholds over gRPC and HTTP, and the decision facts its metadata carries."""

from __future__ import annotations

import numpy as np
import pytest

from tests.integration.http.http_helpers import call
from tests.integration.server.multilabel_model import export_tags
from tests.integration.server.server_helpers import ThreadServer, settings_for
from zoo.core import decision, repository


@pytest.fixture(scope="module")
def tags(tmp_path_factory):
    """(repository, its server) with `tags` v1, whose default_threshold is a list of three numbers."""
    pytest.importorskip("torch")
    repo = export_tags(tmp_path_factory.mktemp("tags"))
    card = repository.read_card(repo, "tags", 1)
    assert isinstance(card.default_threshold, list) and len(set(card.default_threshold)) == 3
    srv = ThreadServer(settings_for(repo)).start()
    yield repo, srv
    srv.stop()


def rows(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def test_the_page_of_a_model_with_per_class_thresholds_renders(tags):
    repo, srv = tags
    t = repository.read_card(repo, "tags", 1).default_threshold
    for path in ("/models/tags", "/models/tags/versions/1"):
        page = call(srv.server.http_port, "GET", path)
        assert page.status == 200, page.body[:400]
    text = page.body.decode()
    assert f'value="{max(t):g}"' in text and 'data-per-class="true"' in text
    for name, v in zip(("red", "green", "blue"), t, strict=True):
        assert f"{name} {v:g}" in text  # the help lists the per-class defaults by class name


def test_the_server_decides_at_the_graphs_per_class_thresholds(tags):
    repo, srv = tags
    from zoo.client import ZooClient
    from zoo.server import versions

    t = repository.read_card(repo, "tags", 1).default_threshold
    assert versions.graph_threshold(srv.server.registry.get("tags").model) == pytest.approx(t)
    with ZooClient(srv.address) as client:
        pred = client.predict("tags", rows(300))
    assert np.array_equal(pred.one_hot, decision.one_hot(pred.probabilities, "multilabel", t))
    assert np.array_equal(pred.labels, decision.labels(pred.probabilities, "multilabel", t))
