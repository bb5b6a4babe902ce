"""Property-based tests (hypothesis) of request decoding and of the threshold / one-hot decision."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zoo.core import decision
from zoo.core.contract import ModelCard
from zoo.server.errors import InvalidInput
from zoo.server.inference import InferenceCall, InputTensor, decode_rows, finish

TASKS = ("multiclass", "binary", "multilabel")


def card(features: int, classes: int = 3, task: str = "multiclass", threshold: float = 0.0) -> ModelCard:
    return ModelCard("m", 1, task, [f"f{i}" for i in range(features)], [f"c{i}" for i in range(classes)], threshold, "0" * 64)


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
row_arrays = st.tuples(st.integers(1, 8), st.integers(1, 6)).flatmap(
    lambda shape: hnp.arrays(np.float32, shape, elements=finite))


@settings(max_examples=200, deadline=None)
@given(row_arrays)
def test_raw_and_typed_encodings_decode_to_the_same_rows(x):
    c = card(x.shape[1])
    raw = decode_rows([InputTensor("input", "FP32", list(x.shape), raw=x.astype("<f4").tobytes())], c)
    typed = decode_rows([InputTensor("input", "FP32", list(x.shape), values=x.ravel().tolist())], c)
    np.testing.assert_array_equal(raw, x)
    np.testing.assert_array_equal(typed, x)
    assert raw.flags.c_contiguous and raw.dtype == np.float32


@settings(max_examples=200, deadline=None)
@given(row_arrays, st.lists(st.integers(-3, 10), min_size=0, max_size=4))
def test_any_shape_but_the_models_is_refused_saying_what_was_expected(x, shape):
    c = card(x.shape[1])
    if len(shape) == 2 and shape[1] == x.shape[1] and shape[0] > 0 and shape[0] * shape[1] * 4 == x.nbytes:
        return  # that is the right shape
    with pytest.raises(InvalidInput) as e:
        decode_rows([InputTensor("input", "FP32", shape, raw=x.tobytes())], c)
    assert str(e.value).startswith(f"expected FP32 [-1, {x.shape[1]}]")


@settings(max_examples=200, deadline=None)
@given(row_arrays, st.data())
def test_a_non_finite_value_is_refused_naming_the_first_bad_row(x, data):
    r = data.draw(st.integers(0, x.shape[0] - 1))
    col = data.draw(st.integers(0, x.shape[1] - 1))
    bad = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    x = x.copy()
    x[r, col] = bad
    first = int(np.argwhere(~np.isfinite(x))[0][0])
    with pytest.raises(InvalidInput, match=rf"^row {first} holds "):
        decode_rows([InputTensor("input", "FP32", list(x.shape), raw=x.tobytes())], card(x.shape[1]))


def probabilities(task: str):
    """Probability matrices as each task's head makes them: softmax rows, or independent sigmoids."""
    def rows(n, c):
        return hnp.arrays(np.float32, (n, c), elements=st.floats(0, 1, width=32))

    if task == "binary":
        return st.integers(1, 8).flatmap(lambda n: rows(n, 1)).map(lambda p: np.concatenate([1 - p, p], axis=1))
    if task == "multilabel":
        return st.tuples(st.integers(1, 8), st.integers(1, 5)).flatmap(lambda s: rows(*s))
    return st.tuples(st.integers(1, 8), st.integers(2, 5)).flatmap(lambda s: rows(*s)).map(
        lambda p: (p + 1e-3) / (p + 1e-3).sum(axis=1, keepdims=True))


def reference_decision(p: np.ndarray, task: str, t: float) -> tuple[np.ndarray, np.ndarray]:
    """The README's rules, row by row in plain Python (independent of zoo.core.decision's vector code)."""
    t = np.float32(t)
    one_hot, labels = np.zeros_like(p), []
    for i, row in enumerate(p):
        if task == "binary":
            pos = int(row[1] >= t)
            one_hot[i, pos] = 1
            labels.append(pos)
            continue
        k = int(np.argmax(row))
        if task == "multiclass":
            if row[k] >= t:
                one_hot[i, k] = 1
        else:
            one_hot[i] = [float(v >= t) for v in row]
        labels.append(k if row[k] >= t else -1)
    return one_hot, np.array(labels, np.int64)


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_one_hot_and_label_follow_the_documented_rules(task, data):
    p = data.draw(probabilities(task))
    t = data.draw(st.floats(0, 1))
    want_oh, want_lab = reference_decision(p, task, t)
    np.testing.assert_array_equal(decision.one_hot(p, task, t), want_oh)
    np.testing.assert_array_equal(decision.labels(p, task, t), want_lab)
    if task == "binary":
        assert (decision.one_hot(p, task, t).sum(axis=1) == 1).all()  # exactly one class, always


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_finish_recomputes_only_for_another_threshold_and_keeps_rows_in_order(task, data):
    p = data.draw(probabilities(task))
    default = decision.default_threshold(task)
    c = card(2, p.shape[1], task, default)
    graph = {"probabilities": p, "one_hot": decision.one_hot(p, task, default), "label": decision.labels(p, task, default)}
    t = data.draw(st.one_of(st.none(), st.floats(0, 1)))
    call = InferenceCall(np.zeros((len(p), 2), np.float32), ("label", "one_hot", "probabilities"), t)
    out = finish(call, graph, c)
    assert list(out) == ["label", "one_hot", "probabilities"]
    want_oh, want_lab = reference_decision(p, task, default if t is None else t)
    np.testing.assert_array_equal(out["one_hot"], want_oh)
    np.testing.assert_array_equal(out["label"], want_lab)
    assert out["probabilities"] is p
