"""The request path's first and last steps: inputs checked into a call, outputs finished (thresholds, selection)."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.core.contract import ModelCard
from zoo.server import inference as postprocess
from zoo.server.errors import InvalidInput
from zoo.server.inference import InferenceCall, InputTensor


def card(task: str, threshold: float, classes: int) -> ModelCard:
    return ModelCard("m", 1, task, ["f0"], [f"c{i}" for i in range(classes)], threshold, "0" * 64)


def finish(outputs, card, names, threshold):
    call = InferenceCall(np.zeros((len(outputs["probabilities"]), 1), np.float32), tuple(names), threshold)
    return postprocess.finish(call, outputs, card)


def test_all_outputs_when_none_requested_and_request_order_otherwise():
    assert postprocess.select_outputs([]) == ("probabilities", "one_hot", "label")
    assert postprocess.select_outputs(["label", "probabilities", "label"]) == ("label", "probabilities")


def test_unknown_output_is_invalid_input_naming_the_valid_ones():
    with pytest.raises(InvalidInput, match="unknown output 'logits'.*probabilities, one_hot, label"):
        postprocess.select_outputs(["logits"])


@pytest.mark.parametrize("raw, want", [(0.3, 0.3), (1, 1.0), (0, 0.0), ("0.75", 0.75)])
def test_threshold_accepts_double_int_and_numeric_string(raw, want):
    assert postprocess.parse_threshold({"threshold": raw}) == want


@pytest.mark.parametrize("raw", [1.5, -0.1, float("nan"), float("inf"), "high", True, None])
def test_threshold_outside_unit_interval_or_not_a_number_is_refused(raw):
    with pytest.raises(InvalidInput, match="threshold"):
        postprocess.parse_threshold({"threshold": raw})


@pytest.mark.parametrize(
    "raw, want",
    [
        ([0.1, 0.9, 0.5], [0.1, 0.9, 0.5]),
        ("0.1,0.9,0.5", [0.1, 0.9, 0.5]),
        (" 0.1 , 0.9,0.5", [0.1, 0.9, 0.5]),
        ([0, 1, "0.5"], [0.0, 1.0, 0.5]),
    ],
)
def test_a_multilabel_threshold_may_be_one_per_class_as_a_list_or_a_comma_string(raw, want):
    assert postprocess.parse_threshold({"threshold": raw}, card("multilabel", 0.5, 3)) == want


@pytest.mark.parametrize("raw, got", [([0.1, 0.9], 2), ("0.1,0.9,0.5,0.2", 4)])
def test_a_per_class_count_other_than_the_classes_names_both(raw, got):
    with pytest.raises(InvalidInput, match=rf"one value per class \(3: c0, c1, c2\).*got {got} values"):
        postprocess.parse_threshold({"threshold": raw}, card("multilabel", 0.5, 3))


@pytest.mark.parametrize("raw", ["0.1,", "0.1,,0.5", [0.1, [0.2], 0.5], [0.1, 1.2, 0.5], [0.1, float("nan"), 0.5]])
def test_a_per_class_value_that_is_not_a_number_in_the_unit_interval_is_refused(raw):
    with pytest.raises(InvalidInput, match=r"must be a number in \[0, 1\]"):
        postprocess.parse_threshold({"threshold": raw}, card("multilabel", 0.5, 3))


@pytest.mark.parametrize("task, classes", [("binary", 2), ("multiclass", 3)])
def test_per_class_thresholds_are_refused_for_a_model_that_takes_one_number(task, classes):
    with pytest.raises(InvalidInput, match=f"this {task} model is one number"):
        postprocess.parse_threshold({"threshold": ",".join(["0.5"] * classes)}, card(task, 0.5, classes))


def test_per_request_per_class_thresholds_recompute_the_decision():
    p = np.array([[0.3, 0.6, 0.2], [0.05, 0.95, 0.7]], np.float32)
    outputs = {"probabilities": p, "one_hot": (p >= 0.5).astype(np.float32), "label": np.array([1, 1])}
    got = finish(outputs, card("multilabel", 0.5, 3), ["one_hot", "label"], [0.25, 0.99, 0.1])
    assert got["one_hot"].tolist() == [[1, 0, 1], [0, 0, 1]] and got["label"].tolist() == [0, 2]


def test_no_threshold_parameter_means_default():
    assert postprocess.parse_threshold({"other": 1}) is None


def test_binary_threshold_recomputes_one_hot_and_label():
    p1 = np.array([0.1, 0.4, 0.6, 0.9], np.float32)
    probs = np.stack([1 - p1, p1], axis=1)
    graph = {"probabilities": probs, "one_hot": np.zeros((4, 2), np.float32), "label": np.zeros(4, np.int64)}
    out = finish(graph, card("binary", 0.5, 2), ["one_hot", "label"], 0.35)
    want_pos = p1 >= 0.35  # the rule written out independently of zoo.core.decision
    np.testing.assert_array_equal(out["label"], want_pos.astype(np.int64))
    np.testing.assert_array_equal(out["one_hot"], np.stack([~want_pos, want_pos], 1).astype(np.float32))
    assert list(out) == ["one_hot", "label"]


def test_multiclass_high_threshold_yields_no_class():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.85, 0.05]], np.float32)
    graph = {"probabilities": probs, "one_hot": np.eye(3, dtype=np.float32)[[0, 1]], "label": np.array([0, 1])}
    out = finish(graph, card("multiclass", 0.0, 3), ["one_hot", "label"], 0.8)
    np.testing.assert_array_equal(out["label"], [-1, 1])
    np.testing.assert_array_equal(out["one_hot"], [[0, 0, 0], [0, 1, 0]])


def test_default_threshold_keeps_the_graph_outputs():
    graph = {"probabilities": np.array([[0.4, 0.6]], np.float32), "one_hot": np.array([[7.0, 7.0]], np.float32), "label": np.array([9])}
    out = finish(graph, card("binary", 0.5, 2), ["one_hot", "label"], None)
    assert out["one_hot"] is graph["one_hot"] and out["label"] is graph["label"]


def test_non_finite_probabilities_are_refused_naming_the_rows():
    # What a model gives for finite inputs that overflow it (3e38 in every feature): never an OK answer.
    probs = np.array([[0.5, 0.5], [np.nan, np.nan], [0.2, 0.8], [np.inf, 0.0]], np.float32)
    graph = {"probabilities": probs, "one_hot": np.zeros((4, 2), np.float32), "label": np.full(4, -1, np.int64)}
    with pytest.raises(InvalidInput, match=r"row\(s\) 1, 3 overflow the model"):
        finish(graph, card("binary", 0.5, 2), ["label"], None)


def test_make_call_checks_inputs_outputs_and_threshold_together():
    c = ModelCard("m", 1, "multiclass", ["a", "b"], ["x", "y", "z"], 0.0, "0" * 64)
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    call = postprocess.make_call(c, [InputTensor("input", "FP32", [2, 2], raw=x.tobytes())], ["label"], {"threshold": "0.4"}, "id-7")
    np.testing.assert_array_equal(call.rows, x)
    assert (call.outputs, call.threshold, call.request_id) == (("label",), 0.4, "id-7")
    json_values = [[1, 2], [3, 4]]  # nested lists, as JSON carries them, flattened row-major by the transport
    call = postprocess.make_call(c, [InputTensor("input", "FP32", [2, 2], values=sum(json_values, []))], [], {})
    np.testing.assert_array_equal(call.rows, x)
    with pytest.raises(InvalidInput, match="not numbers"):
        postprocess.make_call(c, [InputTensor("input", "FP32", [1, 2], values=["a", "b"])], [], {})


def test_long_feature_lists_are_shortened_in_messages():
    c = ModelCard("m", 1, "multiclass", [f"pixel_{i}" for i in range(784)], ["x", "y"], 0.0, "0" * 64)
    with pytest.raises(InvalidInput) as e:
        postprocess.decode_rows([InputTensor("input", "FP32", [1, 3], raw=b"\0" * 12)], c)
    assert (
        str(e.value)
        == "expected FP32 [-1, 784] (pixel_0, pixel_1, pixel_2, pixel_3, pixel_4, pixel_5, pixel_6, pixel_7, ... (784 in all)); got [1, 3]"
    )


def test_large_inputs_take_the_fast_finite_check_with_the_same_answers():
    c = ModelCard("m", 1, "multiclass", [f"f{i}" for i in range(784)], ["x", "y"], 0.0, "0" * 64)
    x = np.ones((1024, 784), np.float32)
    x[700, 5] = np.nan
    with pytest.raises(InvalidInput, match=r"^row 700 holds nan in f5"):
        postprocess.check_finite(x, c)
    x[700, 5] = -np.inf
    with pytest.raises(InvalidInput, match=r"^row 700 holds -inf in f5"):
        postprocess.check_finite(x, c)
    huge = np.full((1024, 784), 3e38, np.float32)  # every value finite, every row sum overflows: still accepted
    postprocess.check_finite(huge, c)
