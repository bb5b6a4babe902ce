"""The user's own files: CSV in any column order with string or integer labels, NPZ, Parquet; bad files rejected precisely."""

import numpy as np
import pytest

from zoo.data import DataError, load_file


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def rows(n, fmt):
    return "".join(fmt(i) for i in range(n))


def test_csv_string_labels_any_column_order(tmp_path):
    p = write(tmp_path, "flowers.csv", "kind,a,b\n" + rows(20, lambda i: f"{'cat' if i % 2 else 'dog'},{i},{i * 2}\n"))
    d = load_file(p, "kind")
    assert d.feature_names == ["a", "b"] and d.class_names == ["cat", "dog"] and d.task == "binary"
    assert d.name == "flowers" and len(d.X_train) + len(d.X_test) == 20
    X = np.concatenate([d.X_train, d.X_test])
    y = np.concatenate([d.y_train, d.y_test])
    assert np.array_equal(X[:, 1], X[:, 0] * 2)  # columns kept together per row
    assert np.array_equal(y, (X[:, 0] % 2 == 0).astype(int))  # dog (index 1) on even rows


def test_csv_integer_labels_sort_numerically(tmp_path):
    p = write(tmp_path, "n.csv", "x,label\n" + rows(30, lambda i: f"{i},{[2, 10, 7][i % 3]}\n"))
    d = load_file(p, "label")
    assert d.class_names == ["2", "7", "10"] and d.task == "multiclass"


def test_csv_several_targets_is_multilabel(tmp_path):
    p = write(tmp_path, "m.csv", "x,y,a,b\n" + rows(20, lambda i: f"{i},{-i},{i % 2},{int(i > 9)}\n"))
    d = load_file(p, "a,b")
    assert d.task == "multilabel" and d.class_names == ["a", "b"] and d.y_train.shape[1] == 2


@pytest.mark.parametrize("text, target, message", [
    ("a,b\n1,x\n2,y\n", "label", r"bad\.csv: no target column 'label'; the columns are: a, b"),
    ("a,label\n1,x\noops,y\n", "label", r"bad\.csv: column 'a', line 3: 'oops' is not a number"),
    ("a,label\n1,x\nnan,y\n", "label", r"bad\.csv: column 'a', line 3: 'nan' is not a finite number"),
    ("a,label\n1,x\n2,x\n", "label", r"bad\.csv: column 'label' has a single class \('x'\)"),
    ("", "label", r"bad\.csv: the file is empty"),
    ("a,label\n", "label", r"bad\.csv: the file has a header but no data rows"),
    ("a,label\n1,x\n2,y,3\n", "label", r"bad\.csv: line 3 has 3 fields; the header has 2"),
    ("a,label\n1,x\n2,\n", "label", r"bad\.csv: column 'label', line 3: the label is missing"),
])
def test_bad_csv_names_file_column_and_row(tmp_path, text, target, message):
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=message):
        load_file(p, target)


def test_npz_with_names(tmp_path):
    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    np.savez(tmp_path / "d.npz", X=X, y=np.array(["a", "b"] * 10), feature_names=np.array(["u", "v"]))
    d = load_file(tmp_path / "d.npz", None)
    assert d.feature_names == ["u", "v"] and d.class_names == ["a", "b"]


def test_npz_with_nan_is_refused(tmp_path):
    X = np.ones((4, 2))
    X[2, 1] = np.nan
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match=r"d\.npz: column 'f1', row 2: not a finite number"):
        load_file(tmp_path / "d.npz", None)


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    t = pa.table({"y": ["no", "yes"] * 10, "f": list(range(20)), "g": [0.5] * 20})
    pq.write_table(t, tmp_path / "d.parquet")
    d = load_file(tmp_path / "d.parquet", "y")
    assert d.feature_names == ["f", "g"] and d.class_names == ["no", "yes"]
    bad = pa.table({"y": ["no", "yes"], "f": ["1", "2"]})
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: column 'f', row 0: '1' is not a number"):
        load_file(tmp_path / "bad.parquet", "y")


def test_unsupported_suffix_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "nope.csv", "y")
    p = write(tmp_path, "d.xlsx", "x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_file(p, "y")
