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
    ("a,b\n1,x\n2,y\n", "label", r"bad\.csv: no target column 'label' \(read as comma-separated\); the columns are: a, b"),
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
    with pytest.raises(DataError, match=r"bad\.parquet: 2 bad cells:\n  column 'f', row 0: '1' is not a number\n  column 'f', row 1: '2' is not a number$"):
        load_file(tmp_path / "bad.parquet", "y")


def test_unsupported_suffix_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "nope.csv", "y")
    p = write(tmp_path, "d.xlsx", "x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_file(p, "y")


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


@pytest.mark.parametrize("name, data, message", [
    ("d.npz", PNG, r"d\.npz: not an NPZ archive \(it looks like a PNG image\); expected a NumPy \.npz archive"),
    ("d.npz", b"a,b\n1,2\n", r"d\.npz: not an NPZ archive \(it looks like text\); expected a NumPy \.npz archive"),
    ("d.parquet", PNG, r"d\.parquet: not a readable Parquet file \(it looks like a PNG image\); expected an Apache Parquet file"),
    ("d.parquet", b"PAR1 cut short", r"d\.parquet: not a readable Parquet file \(it looks like a Parquet file, but pyarrow says: "),
    ("d.parquet", b"", r"d\.parquet: not a readable Parquet file \(it is empty\)"),
])
def test_file_not_what_its_suffix_says(tmp_path, name, data, message):
    from zoo.data.files import read_rows

    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(DataError, match=message):
        load_file(p, "y")
    with pytest.raises(DataError, match=message):
        read_rows(p, "y")


def test_npy_files_that_are_not_arrays(tmp_path):
    from zoo.data.files import read_rows

    np.save(tmp_path / "a.npy", np.arange(3.0))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    with pytest.raises(DataError, match=r"a\.npz: not an NPZ archive \(it holds a single NumPy array, a \.npy file\)"):
        load_file(tmp_path / "a.npz", None)
    (tmp_path / "b.npy").write_bytes(PNG)
    with pytest.raises(DataError, match=r"b\.npy: not a NumPy \.npy array \(it looks like a PNG image\); expected an array saved with numpy\.save"):
        read_rows(tmp_path / "b.npy", None)
    np.savez(tmp_path / "o.npz", X=np.array([[1, "a"]], dtype=object), y=np.array([0]))
    with pytest.raises(DataError, match=r"o\.npz: 'X' holds Python objects; expected a numeric or string array"):
        load_file(tmp_path / "o.npz", None)


@pytest.mark.parametrize("columns, message", [
    ({"f": [1.0, 2.0, None, float("nan")]}, r"column 'f', row 2: None is not a number"),
    ({"f": [1.0, float("nan"), None, 2.0]}, r"column 'f', row 1: nan is not a finite number \(NaN/Inf\)"),
    ({"f": [1, 2, 3, None]}, r"column 'f', row 3: None is not a number"),
    ({"f": [0.5, 1.0, float("-inf"), 2.0]}, r"column 'f', row 2: -inf is not a finite number"),
    ({"f": [True, False, True, False]}, r"column 'f', row 0: True is not a number"),
    ({"f": [1.0, 2.0, 3.0, 4.0], "g": [1, 2, None, 4]}, r"column 'g', row 2: None is not a number"),
    ({"y": ["a", "b", None, "a"]}, r"column 'y', row 2: the label is missing"),
    ({"y": [0.0, 1.0, float("nan"), 1.0]}, r"column 'y', row 2: the label is missing"),
])
def test_parquet_errors_name_column_and_row(tmp_path, columns, message):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = {"y": ["a", "b", "a", "b"], "f": [1.0, 2.0, 3.0, 4.0]} | columns
    pq.write_table(pa.table(table), tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"p\.parquet: (\d+ bad cells:\n(  .*\n)*  )?" + message):
        load_file(tmp_path / "p.parquet", "y")


def test_parquet_values_and_label_texts(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from zoo.data.files import read_rows

    rng = np.random.default_rng(3)
    n = 500
    table = pa.table({
        "i": pa.array(rng.integers(-2**62, 2**62, n), pa.int64()),
        "h": pa.array(rng.normal(size=n).astype(np.float16)),
        "kind": pa.array(rng.choice(["setosa", "01", "virginica"], n)).dictionary_encode(),  # a pandas categorical
        "f": pa.array(rng.normal(size=n)),
        "num": pa.array(rng.integers(0, 3, n).astype(np.float64)),
    })
    pq.write_table(table, tmp_path / "t.parquet")
    X, names, raw = read_rows(tmp_path / "t.parquet", "kind,num")
    assert names == ["i", "h", "f"]
    expected = np.array([[float(v) for v in row] for row in zip(*(table.column(c).to_pylist() for c in names))])
    assert X.dtype == np.float64 and np.array_equal(X, expected)
    assert raw == [[k, str(int(v))] for k, v in zip(table.column("kind").to_pylist(), table.column("num").to_pylist())]
    assert load_file(tmp_path / "t.parquet", "kind").class_names == ["01", "setosa", "virginica"]
