"""OnnxModel on a real export's bytes: the provider that runs it, predict against onnxruntime used directly,
batch invariance, the contract check against the card, and the load-time self-check."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
from tests.integration.server.server_helpers import rows_for

from zoo.core import repository
from zoo.core.contract import INPUT_NAME, OUTPUT_NAMES, ModelCard
from zoo.core.onnx_session import CPU, gpu_wanted
from zoo.server import runtime
from zoo.server.runtime import SELFCHECK_TOLERANCE, GpuRequired, OnnxModel


@pytest.fixture(scope="module")
def iris(exported_repo) -> tuple[ModelCard, bytes]:
    """The card and the verified model bytes of the real iris v1 export."""
    card = repository.read_card(exported_repo, "iris", 1)
    return card, repository.verify_model_file(exported_repo, card).read_bytes()


@pytest.fixture(scope="module")
def rows(exported_repo) -> np.ndarray:
    """64 plausible iris rows, C-contiguous FP32."""
    return np.ascontiguousarray(rows_for(exported_repo, "iris", 64, seed=3))


def direct_session(model: bytes) -> ort.InferenceSession:
    """onnxruntime used directly (CPU, one intra-op thread like OnnxModel's default), for comparison."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def with_card(card: ModelCard, **changes) -> ModelCard:
    """A copy of `card` with some fields changed."""
    return dataclasses.replace(card, **changes)


def test_a_cpu_only_machine_runs_the_model_on_the_cpu_provider(iris):
    if gpu_wanted():
        pytest.skip("a CUDA provider and driver are present: the CPU is not what runs models here")
    model = OnnxModel(iris[1], iris[0])
    assert (model.provider, model.on_gpu) == (CPU, False)
    assert model.output_names == list(OUTPUT_NAMES)


def test_predict_equals_onnxruntime_used_directly(iris, rows):
    got = OnnxModel(iris[1], iris[0]).predict(rows)
    want = dict(zip(OUTPUT_NAMES, direct_session(iris[1]).run(list(OUTPUT_NAMES), {INPUT_NAME: rows})))
    assert list(got) == list(OUTPUT_NAMES)
    for name in OUTPUT_NAMES:
        np.testing.assert_array_equal(got[name], want[name])
    assert got["probabilities"].shape == (64, iris[0].num_classes) and got["label"].shape == (64,)


def test_a_row_alone_equals_the_same_row_in_a_batch_bit_for_bit(iris, rows):
    model = OnnxModel(iris[1], iris[0])
    batch = model.predict(rows)
    for i in range(len(rows)):
        alone = model.predict(np.ascontiguousarray(rows[i:i + 1]))
        for name in OUTPUT_NAMES:
            assert alone[name].tobytes() == batch[name][i:i + 1].tobytes(), f"row {i}, output {name}"


def test_contract_check_refuses_a_card_with_the_wrong_feature_count(iris):
    card = with_card(iris[0], feature_names=[*iris[0].feature_names, "extra"])
    with pytest.raises(ValueError, match=f"model input has {iris[0].num_features} features, metadata lists {card.num_features}"):
        OnnxModel(iris[1], card)


def test_contract_check_refuses_a_card_with_the_wrong_class_count(iris):
    card = with_card(iris[0], class_names=[*iris[0].class_names, "extra"])
    with pytest.raises(ValueError, match="classes"):
        model = OnnxModel(iris[1], card)
        model.selfcheck()


def test_bytes_that_are_not_a_model_are_refused(iris):
    with pytest.raises(Exception, match="INVALID_PROTOBUF"):  # onnxruntime's own error: the registry records it
        OnnxModel(b"not an onnx model", iris[0])


def test_selfcheck_passes_on_the_real_card(iris):
    assert iris[0].selfcheck_inputs, "the export recorded self-check rows"
    OnnxModel(iris[1], iris[0]).selfcheck()


def test_selfcheck_fails_when_one_probability_is_off_by_1e_3(iris):
    probs = [list(row) for row in iris[0].selfcheck_probabilities]
    probs[-1][0] += 1e-3
    model = OnnxModel(iris[1], with_card(iris[0], selfcheck_probabilities=probs))
    with pytest.raises(ValueError, match=f"self-check failed: max \\|probability difference\\| 0.001 > {SELFCHECK_TOLERANCE}"):
        model.selfcheck()


def test_selfcheck_fails_when_the_recorded_probabilities_have_another_shape(iris):
    probs = [list(row)[:-1] for row in iris[0].selfcheck_probabilities]
    with pytest.raises(ValueError, match="self-check: probabilities shape"):
        OnnxModel(iris[1], with_card(iris[0], selfcheck_probabilities=probs)).selfcheck()


def test_selfcheck_refuses_a_card_without_selfcheck_rows(iris):
    model = OnnxModel(iris[1], with_card(iris[0], selfcheck_inputs=[], selfcheck_probabilities=[]))
    with pytest.raises(ValueError, match="no self-check rows"):
        model.selfcheck()


def test_require_gpu_without_cuda_raises_gpu_required_naming_the_provider(iris, monkeypatch):
    if gpu_wanted():
        pytest.skip("a CUDA provider and driver are present: require_gpu may well succeed")
    monkeypatch.setattr(runtime, "_cuda_usable", runtime._cuda_usable)  # put the process-wide memo back afterwards
    with pytest.raises(GpuRequired, match=f"iris v1 runs on {CPU}, but --require-gpu is set"):
        OnnxModel(iris[1], iris[0], require_gpu=True)


def test_rows_within_a_budget_follow_the_models_cost(iris):
    card, data = iris
    model = OnnxModel(data, card)
    assert model.rows_within(1e-9, 1024) == 0  # nothing answers in a nanosecond
    assert model.rows_within(10.0, 1024) == 1024  # ten seconds: the whole batch cap
    assert model.rows_within(10.0, 7) == 7  # never above the cap it is given
    # No budget in between is asserted: what a millisecond buys depends on the machine's load, not on the rule.
