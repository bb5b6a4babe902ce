"""The try-it slider's validation scores: the stored curve of each task, read at a threshold."""

from zoo.core.contract import ModelCard
from zoo.server.browser import operating, try_it


def card(task: str, classes: list[str], curve, threshold=0.5) -> ModelCard:
    return ModelCard("m", 1, task, ["a"], classes, threshold, "0" * 64, extra={"operating_point": {"validation_curve": curve}})


BINARY = {"threshold": [0.1, 0.4, 0.7], "precision": [0.5, 0.8, 0.95], "recall": [1.0, 0.9, 0.4], "coverage": [0.9, 0.5, 0.2]}


def test_binary_scores_are_those_of_the_first_point_at_or_above_the_threshold():
    (curve,) = operating.curves(card("binary", ["no", "yes"], BINARY)).values()
    assert operating.at(curve, 0.4) == {"precision": 0.8, "recall": 0.9, "coverage": 0.5}
    assert operating.at(curve, 0.41) == {"precision": 0.95, "recall": 0.4, "coverage": 0.2}
    assert operating.at(curve, 0.0)["coverage"] == 0.9 and operating.at(curve, 0.8) is None
    assert operating.describe("yes", operating.at(curve, 0.5)) == "yes: precision 0.95, recall 0.40, coverage 0.20"


def test_multiclass_with_abstention_shows_the_accuracy_of_the_answered_rows_and_the_coverage():
    curve = {"threshold": [0.3, 0.6, 0.9], "accuracy": [0.8, 0.9, 0.99], "coverage": [1.0, 0.7, 0.3]}
    c = card("multiclass", ["a", "b", "c"], curve, 0.6)
    assert list(operating.curves(c)) == ["top class"]
    assert try_it._stats(operating.curves(c), 0.6).endswith("top class: accuracy 0.90, coverage 0.70.")


def test_multilabel_has_one_curve_per_class_read_at_its_own_default():
    c = card("multilabel", ["x", "y"], {"x": BINARY, "y": BINARY}, [0.1, 0.7])
    want = "x: precision 0.50, recall 1.00, coverage 0.90; y: precision 0.95, recall 0.40, coverage 0.20."
    assert try_it._stats(operating.curves(c), [0.1, 0.7]).endswith(want)


def test_a_missing_or_malformed_curve_shows_nothing():
    assert operating.curves(card("binary", ["no", "yes"], None)) == {}
    assert operating.curves(card("binary", ["no", "yes"], {**BINARY, "threshold": [0.7, 0.4, 0.1]})) == {}
    assert operating.curves(card("binary", ["no", "yes"], {**BINARY, "precision": [0.5, float("nan"), 1.0]})) == {}
    assert operating.curves(card("multilabel", ["x", "y"], {"x": BINARY})) == {}
