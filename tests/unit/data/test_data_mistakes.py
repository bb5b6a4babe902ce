"""Data mistakes that used to pass silently: label variants, tiny classes, other delimiters, a misspelt target, many bad cells."""

import numpy as np
import pytest

from zoo.data import DataError, load_file


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def rows(labels):
    return "a,b,label\n" + "".join(f"{i},{i % 7},{lab}\n" for i, lab in enumerate(labels))


def test_labels_differing_only_by_case_are_named_with_their_counts(tmp_path):
    p = write(tmp_path, "yn.csv", rows(["yes"] * 40 + ["no"] * 40 + ["Yes"]))
    d = load_file(p, "label")
    assert d.class_names == ["Yes", "no", "yes"]  # still trained as asked: the warning says so
    assert any("labels 'yes' (40 rows), 'Yes' (1 row) differ only by case or surrounding whitespace" in w for w in d.warnings)
    assert any("class 'Yes' (1 row) with fewer than 10 rows" in w for w in d.warnings)
    with pytest.raises(DataError, match=r"yn\.csv: column 'label': labels 'yes' \(40 rows\), 'Yes' \(1 row\) differ only .*--strict-labels"):
        load_file(p, "label", strict_labels=True)


def test_clean_labels_give_no_warning(tmp_path):
    d = load_file(write(tmp_path, "ok.csv", rows(["yes", "no"] * 20)), "label", strict_labels=True)
    assert d.warnings == [] and d.class_names == ["no", "yes"]


def test_labels_differing_by_surrounding_whitespace_in_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"f": list(range(50)), "y": ["yes"] * 20 + ["no"] * 20 + ["yes "] * 10}), tmp_path / "w.parquet")
    d = load_file(tmp_path / "w.parquet", "y")
    assert d.warnings == [f"{tmp_path / 'w.parquet'}: column 'y': labels 'yes' (20 rows), 'yes ' (10 rows) differ only by case or "
                          "surrounding whitespace; they are separate classes"]


@pytest.mark.parametrize("sep, name", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_other_delimiters_are_detected(tmp_path, sep, name):
    text = "".join(sep.join(r) + "\n" for r in [["a", "b", "label"], ["1", "2", "x"], ["3", "4", "y"], ["5", "6", "x"]])
    d = load_file(write(tmp_path, "s.csv", text), "label")
    assert d.feature_names == ["a", "b"] and d.class_names == ["x", "y"]
    with pytest.raises(DataError, match=rf"no target column 'y' \(read as {name}-separated\); the columns are: a, b, label"):
        load_file(write(tmp_path, "s.csv", text), "y")


def test_a_ragged_row_names_the_delimiter(tmp_path):
    with pytest.raises(DataError, match=r"line 3 has 2 fields; the header has 3 \(read as semicolon-separated\)"):
        load_file(write(tmp_path, "r.csv", "a;b;label\n1;2;x\n3;y\n"), "label")


@pytest.mark.parametrize("target, hint", [("lable", "; did you mean 'label'?"), ("LABEL", "; did you mean 'label'?"), ("zzz", "")])
def test_a_wrong_target_says_which_column_is_closest(tmp_path, target, hint):
    p = write(tmp_path, "t.csv", rows(["x", "y"] * 5))
    with pytest.raises(DataError) as e:
        load_file(p, target)
    assert str(e.value).endswith(f"no target column {target!r} (read as comma-separated); the columns are: a, b, label{hint}")


def test_a_wrong_target_in_parquet_says_which_column_is_closest(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"sepal": [1.0, 2.0], "species": ["a", "b"]}), tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"no target column 'specie'; the columns are: sepal, species; did you mean 'species'\?$"):
        load_file(tmp_path / "p.parquet", "specie")


def test_bad_cells_are_listed_with_line_and_column(tmp_path):
    text = "a,b,label\n1,2,x\noops,2,y\n3,inf,x\n4,5,\n6,7,y\n"
    with pytest.raises(DataError) as e:
        load_file(write(tmp_path, "b.csv", text), "label")
    assert str(e.value) == (
        f"{tmp_path / 'b.csv'}: 3 bad cells:\n"
        "  column 'a', line 3: 'oops' is not a number\n"
        "  column 'b', line 4: 'inf' is not a finite number (NaN/Inf)\n"
        "  column 'label', line 5: the label is missing"
    )


def test_at_most_twenty_bad_cells_are_listed_and_all_are_counted(tmp_path):
    text = "a,label\n" + "".join(f"{'x' if i % 2 else i},y\n" for i in range(60))
    with pytest.raises(DataError) as e:
        load_file(write(tmp_path, "m.csv", text), "label")
    lines = str(e.value).splitlines()
    assert lines[0].endswith("m.csv: 30 bad cells; the first 20:")
    assert lines[1:] == [f"  column 'a', line {i + 2}: 'x' is not a number" for i in range(1, 40, 2)]


def test_npz_lists_every_non_finite_cell(tmp_path):
    X = np.ones((5, 2))
    X[1, 1] = X[3, 0] = np.nan
    np.savez(tmp_path / "n.npz", X=X, y=np.array([0, 1, 0, 1, 0]))
    with pytest.raises(DataError, match=r"2 bad cells:\n  column 'f1', row 1: not a finite .*\n  column 'f0', row 3: not a finite"):
        load_file(tmp_path / "n.npz", None)
