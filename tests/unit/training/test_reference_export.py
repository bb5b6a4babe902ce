"""The export carries the training split's reference statistics into metadata.json (and not into the ONNX file)."""

from __future__ import annotations

import numpy as np
import onnx

from zoo.core import reference, repository
from zoo.data import get_recipe


def test_the_export_records_the_training_rows_reference(exported_repo):
    data = get_recipe("iris").load()
    card = repository.read_card(exported_repo, "iris", 1)
    ref = reference.parse(card.extra, card.num_features, card.num_classes)
    assert ref is not None and ref.rows == len(data.X_train)
    assert np.allclose(ref.minimum, data.X_train.min(axis=0)) and np.allclose(ref.maximum, data.X_train.max(axis=0))
    assert np.allclose(ref.class_mix, np.bincount(data.y_train, minlength=3) / len(data.y_train))
    # every training row falls in some bin of each feature, the shares add up to one
    assert np.allclose(ref.proportions.sum(axis=1), 1.0)
    props = {p.key for p in onnx.load(str(repository.verify_model_file(exported_repo, card))).metadata_props}
    assert reference.KEY not in props  # it is long: metadata.json only
