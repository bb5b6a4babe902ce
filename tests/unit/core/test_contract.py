"""ModelCard.from_dict refuses a metadata.json whose values make no sense, naming the key and what came."""

from __future__ import annotations

import pytest

from zoo.core.contract import ModelCard

GOOD = {
    "name": "m", "version": 1, "task": "binary", "feature_names": ["a", "b"], "class_names": ["no", "yes"],
    "default_threshold": 0.5, "model_sha256": "0" * 64,
    "selfcheck": {"inputs": [[1.0, 2.0]], "probabilities": [[0.25, 0.75]]},
}


def test_a_sound_card_loads():
    card = ModelCard.from_dict(GOOD)
    assert (card.num_features, card.num_classes, card.default_threshold) == (2, 2, 0.5)


@pytest.mark.parametrize("changes, message", [
    ({"default_threshold": float("nan")}, r"default_threshold must be a number in \[0, 1\] .*; got nan"),
    ({"default_threshold": float("inf")}, r"default_threshold must be a number in \[0, 1\] .*; got inf"),
    ({"default_threshold": -0.1}, r"default_threshold .*; got -0\.1"),
    ({"default_threshold": 1.01}, r"default_threshold .*; got 1\.01"),
    ({"default_threshold": "high"}, r"malformed value: could not convert string to float: 'high'"),
    ({"class_names": ["no", "yes", "maybe"]}, r"task binary needs exactly 2 class_names; got 3"),
    ({"class_names": ["yes", "yes"]}, r"class_names must be distinct; 'yes' appears more than once"),
    ({"feature_names": ["a", "a"]}, r"feature_names must be distinct; 'a' appears more than once"),
    ({"model_sha256": "abc"}, r"model_sha256 must be 64 lowercase hex digits; got 'abc'"),
    ({"selfcheck": {"inputs": [[1.0, 2.0]], "probabilities": []}}, r"selfcheck has 1 input rows but 0 probability rows"),
    ({"selfcheck": {"inputs": [[1.0]], "probabilities": [[0.5, 0.5]]}},
     r"selfcheck inputs row 0 holds 1 numbers, but feature_names lists 2"),
    ({"selfcheck": {"inputs": [[1.0, 2.0]], "probabilities": [0.5]}},
     r"selfcheck probabilities row 0 holds a float, but class_names lists 2"),
])
def test_values_that_make_no_sense_are_refused_naming_them(changes, message):
    with pytest.raises(ValueError, match=message):
        ModelCard.from_dict({**GOOD, **changes})
