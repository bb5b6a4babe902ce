"""CSV/TSV reading: pyarrow's fast path returns exactly what the careful csv-module pass returns, or defers to it;
every error (bad cell, ragged row, binary or non-UTF-8 file) comes from the careful pass, naming file, line and column."""

import csv
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest

from zoo.data import DataError, from_arrays, load_file
from zoo.data.csv_reader import read_csv as _read_csv
from zoo.data.csv_reader import read_csv_careful as _read_csv_careful
from zoo.data.csv_reader import read_csv_fast as _read_csv_fast
from zoo.data.files import read_rows

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def outcome(read):
    """("ok", X, label rows) or ("error", message) of a reader call."""
    try:
        X, labels, features, _ = read()
    except DataError as e:
        return ("error", str(e))
    return ("ok", X.tolist(), [lab.texts() for lab in labels], features)


def both_passes(p, targets):
    """(fast outcome or None when it defers, careful outcome) of one file."""
    delimiter = "\t" if p.suffix == ".tsv" else ","
    fast = _read_csv_fast(p, targets, delimiter, np.float64)
    careful = outcome(lambda: _read_csv_careful(p, targets, delimiter, np.float64))
    if fast is not None:
        fast = ("ok", fast[0].tolist(), [lab.texts() for lab in fast[1]], fast[2])
    return fast, careful


# ------------------------------------------------------------------------------------- binary and non-UTF-8 files


@pytest.mark.parametrize("read", [lambda p: load_file(p, "label"), lambda p: read_rows(p, "label"), lambda p: read_rows(p, None)],
                         ids=["load_file", "read_rows", "read_rows-no-target"])
def test_png_named_csv_says_what_it_is(tmp_path, read):
    p = write(tmp_path, "data.csv", PNG)
    with pytest.raises(DataError, match=r"data\.csv: not a UTF-8 text CSV file \(byte 0x89 at offset 0, line 1; "
                                        r"it looks like a PNG image\); expected a UTF-8 CSV file with a header line$"):
        read(p)


def test_latin1_file_names_the_byte_and_line(tmp_path):
    p = write(tmp_path, "fr.csv", "a,label\n1,chat\n2,caf\xe9\n".encode("latin-1"))
    message = r"fr\.csv: not a UTF-8 text CSV file \(byte 0xe9 at offset 20, line 3; is it Latin-1 or Windows-1252\? save it as UTF-8\)"
    with pytest.raises(DataError, match=message):
        load_file(p, "label")
    with pytest.raises(DataError, match=message):
        read_rows(p, "label")


def test_non_utf8_is_reported_before_a_bad_cell(tmp_path):
    """As when the whole file was decoded first: the encoding is the problem to fix, not line 2."""
    p = write(tmp_path, "d.csv", b"a,label\noops,x\n2,caf\xe9\n")
    with pytest.raises(DataError, match=r"byte 0xe9 at offset 20, line 3"):
        load_file(p, "label")


def test_utf16_and_nul_bytes_are_not_text(tmp_path):
    with pytest.raises(DataError, match=r"u\.tsv: not a UTF-8 text TSV file \(byte 0xff at offset 0, line 1; it looks like UTF-16 text\)"):
        load_file(write(tmp_path, "u.tsv", "a\tlabel\n1\tx\n".encode("utf-16")), "label")
    with pytest.raises(DataError, match=r"n\.csv: not a UTF-8 text CSV file \(byte 0x00 at offset 12, line 3; it looks like binary data\)"):
        load_file(write(tmp_path, "n.csv", b"a,label\n1,x\n\x00,y\n"), "label")
    with pytest.raises(DataError, match=r"byte 0x00 at offset 14, line 3"):  # the fast path would take a NUL in a label
        load_file(write(tmp_path, "m.csv", b"a,label\n1,x\n2,\x00y\n3,y\n"), "label")


def test_bad_utf8_offset_is_exact_across_read_chunks(tmp_path):
    """A 2-byte character cut by the 1 MiB read boundary, its second byte invalid: the offset is the first byte's."""
    head = b"a,label\n"
    filler = b"1,x\n" * ((1 << 20) // 4)
    body = head + filler[: (1 << 20) - len(head) - 3] + b"1,\xc3(\n2,y\n"
    assert body.index(b"\xc3") == (1 << 20) - 1
    p = write(tmp_path, "big.csv", body)
    line = body.count(b"\n", 0, 1 << 20) + 1
    with pytest.raises(DataError, match=rf"byte 0xc3 at offset {(1 << 20) - 1}, line {line};"):
        load_file(p, "label")


def test_character_cut_off_at_end_of_file(tmp_path):
    with pytest.raises(DataError, match=r"byte 0xc3 at offset 14, line 3"):
        load_file(write(tmp_path, "c.csv", b"a,label\n1,x\n2,\xc3"), "label")


def test_bom_is_dropped_on_both_passes(tmp_path):
    text = "\ufeffa,label,b\n" + "".join(f"{i},{'yes' if i % 2 else 'no'},{i / 4}\n" for i in range(20))
    p = write(tmp_path, "bom.csv", text)
    d = load_file(p, "label")
    assert d.feature_names == ["a", "b"] and d.class_names == ["no", "yes"]
    fast, careful = both_passes(p, ["label"])
    assert fast == careful and careful[3] == ["a", "b"]
    slow = write(tmp_path, "bom2.csv", text + "1_000,yes,2\n")  # a cell only float() reads: the careful pass
    assert both_passes(slow, ["label"])[0] is None
    assert load_file(slow, "label").feature_names == ["a", "b"]


# -------------------------------------------------------------------------- the same errors from either pass


BAD = [
    ("a,label\n1,x\noops,y\n", r"column 'a', line 3: 'oops' is not a number"),
    ("a,label\noops,x\n2,y\n", r"column 'a', line 2: 'oops' is not a number"),
    ("a,b,label\n1,2,x\n3, 4x ,y\n", r"column 'b', line 3: '4x' is not a number"),
    ("a,label\n1,x\n,y\n", r"column 'a', line 3: '' is not a number"),
    ("a,label\n1,x\nNA,y\n", r"column 'a', line 3: 'NA' is not a number"),
    ("a,label\n1,x\nnan,y\n", r"column 'a', line 3: 'nan' is not a finite number \(NaN/Inf\)"),
    ("a,label\n1,x\n-Infinity,y\n", r"column 'a', line 3: '-Infinity' is not a finite number"),
    ("a,label\n1,x\n1e400,y\n", r"column 'a', line 3: '1e400' is not a finite number"),
    ("a,label\n1,x\n2,y,3\n", r"line 3 has 3 fields; the header has 2"),
    ("a,b,label\n1,2,x\n2,y\n", r"line 3 has 2 fields; the header has 3"),
    ("a,label\n1,x\n2,\n", r"column 'label', line 3: the label is missing"),
    ("a,label\n1,x\n2, NaN \n", r"column 'label', line 3: the label is missing"),
    ("a,label\n1,x\n2,None\n", r"column 'label', line 3: the label is missing"),
    ("a,label\n1,x\n2,\"\"\n", r"column 'label', line 3: the label is missing"),
    ("a,label\n1,x\n\n\noops,y\n", r"column 'a', line 5: 'oops' is not a number"),  # blank lines count
    ("a,label\n1,\"two\nlines\"\noops,y\n", r"column 'a', line 4: 'oops' is not a number"),
    ("a,label\n1,\"two\nlines\",3\n", r"line 2 has 3 fields; the header has 2"),  # a record's first line
    ("", r"the file is empty; expected a header line and at least one data row"),
    ("\n\n", r"the file is empty"),
    ("a,label\n", r"the file has a header but no data rows"),
    ("a,b\n1,2\n", r"no target column 'label' \(read as comma-separated\); the columns are: a, b"),
    ("a,label,a\n1,x,2\n", r"column 'a' appears twice in the header"),
    ("label\nx\n", r"no feature columns besides the target"),
]


@pytest.mark.parametrize("text, message", BAD, ids=[m for _, m in BAD])
def test_bad_cell_same_error_from_both_passes(tmp_path, text, message):
    p = write(tmp_path, "bad.csv", text)
    fast, careful = both_passes(p, ["label"])
    assert fast is None  # the fast path never raises: it defers
    assert careful[0] == "error" and careful[1].startswith(f"{p}: ") and re.search(message, careful[1])
    with pytest.raises(DataError) as e:
        load_file(p, "label")
    assert str(e.value) == careful[1]
    with pytest.raises(DataError) as e:
        read_rows(p, "label")
    assert str(e.value) == careful[1]


def test_tsv(tmp_path):
    p = write(tmp_path, "t.tsv", "x\tkind\ty\n" + "".join(f"{i}\t{'a,b' if i % 2 else 'c'}\t{-i}\n" for i in range(10)))
    d = load_file(p, "kind")
    assert d.class_names == ["a,b", "c"] and d.feature_names == ["x", "y"]
    fast, careful = both_passes(p, ["kind"])
    assert fast == careful
    bad = write(tmp_path, "b.tsv", "x\tkind\n1\ta\n2,5\tb\n")
    with pytest.raises(DataError, match=r"b\.tsv: column 'x', line 3: '2,5' is not a number"):
        load_file(bad, "kind")


# --------------------------------------------------------------- the fast path never disagrees with float()


NUMBERS = ["1", " 1.5 ", "+1", "-0", "0.1", ".5", "5.", "1e5", "1E-5", "00001", "4.9e-324", "1e-400",
           "1.7976931348623157e308", "123456789012345678901234567890", "0.30000000000000004", '"2.5"',
           '"1"2', '" 3 "', "1e", "e5", "1_000", "0x10", "inf", "NaN", "", '""', "1.5f", "\u0661\u0662",
           "\uff11", "\xa01", "1\u2003", "true", "--1", "+", "-", ".", "1 2", "1d5"]
LABELS = ["x", " x ", '"x"', '" y "', '"a,b"', '"a""b"', "01", "1.0", "1", "nan", "NA", "N/A", "null", "-",
          "\xa0x", "caf\xe9", "x\u2003", '"two\nlines"', '"cr\rlf"', "#N/A", "a b"]


def float_outcome(cell: str) -> tuple[str, float | str]:
    """What a cell must read as: ("ok", float(cell)) for a finite number, else ("error", the kind of refusal)."""
    try:
        value = float(cell)
    except ValueError:
        return "error", "is not a number"
    return ("ok", value) if math.isfinite(value) else ("error", "is not a finite number")


@pytest.mark.parametrize("token", NUMBERS)
def test_number_cells_agree_with_float(tmp_path, token):
    """Every token is checked: the careful pass reads exactly float()'s value (sign of zero included) or refuses both
    cells naming them, and the fast pass either gives the same outcome or defers (it never refuses on its own)."""
    p = write(tmp_path, "n.csv", f"a,label,b\n{token},x,1\n2,y,{token}\n3,x,4\n")
    cell = next(csv.reader(io.StringIO(token)), [""])[0]
    fast, careful = both_passes(p, ["label"])
    kind, value = float_outcome(cell)
    assert careful[0] == kind, careful
    if kind == "ok":
        assert isinstance(value, float)
        got = [careful[1][0][0], careful[1][1][1]]  # column a of line 2 and column b of line 3
        assert [repr(g) for g in got] == [repr(value)] * 2
        assert careful[1][1][0] == 2.0 and careful[1][0][1] == 1.0 and careful[1][2] == [3.0, 4.0]
    else:
        for column, line in (("a", 2), ("b", 3)):
            assert f"column '{column}', line {line}: {cell!r} {value}" in careful[1]
    if fast is not None:
        assert fast == careful
    else:
        assert kind == "error" or not cell.isascii() or "_" in cell, f"the fast pass deferred on a plain number {token!r}"
    whole = outcome(lambda: _read_csv(p, ["label"]))  # the reader the data path uses: the same outcome
    assert whole == careful


@pytest.mark.parametrize("token", LABELS)
def test_label_cells_agree_with_csv_module(tmp_path, token):
    p = write(tmp_path, "l.csv", f"a,label\n1,{token}\n2,y\n3,{token}\n")
    fast, careful = both_passes(p, ["label"])
    assert fast is None or fast == careful
    for lines in ("\n", "\r\n", "\r"):
        q = write(tmp_path, "l2.csv", f"a,label{lines}1,{token}{lines}2,y{lines}")
        fast, careful = both_passes(q, ["label"])
        assert fast is None or fast == careful


@pytest.mark.parametrize("text", [
    "a,label\n1,x\n   \n2,y\n",  # a whitespace-only line: skipped
    "a,label\n1,x\n,\n2,y\n",  # a line of empty cells: skipped
    ",,\na,label\n1,x\n2,y\n",  # ... even before the header
    "a,label\n1_000,x\n2,y\n",  # float() reads underscores; pyarrow does not
    "a , label \n1,x\n2,y\n",  # header cells are stripped
    "a,label\r1,x\r2,y\r",  # old Mac line ends
])
def test_files_only_the_careful_pass_reads_load_the_same(tmp_path, text):
    p = write(tmp_path, "odd.csv", text)
    fast, careful = both_passes(p, ["label"])
    assert careful[0] == "ok" and (fast is None or fast == careful)
    X, names, raw = read_rows(p, "label")
    assert (X.tolist(), [[r[0] for r in raw]], names) == careful[1:]


@pytest.mark.parametrize("text", [
    'a,label\n1,x"y\n2,y\n',  # a quote inside an unquoted cell is kept
    'a,label\n1,"x"y\n2,y\n',  # text after a closing quote is appended
    'a,label\n1,"x" \n2,y\n',
    'a,label\n1,x\n2,"y\n3,z\n',  # a quote left open runs to the end of the file
    'a,"la""bel"\n1,x\n2,y\n',
    '"a\nb",label\n1,x\n2,y\n',  # a header cell over two lines
])
def test_odd_quoting_agrees_with_csv_module(tmp_path, text):
    p = write(tmp_path, "q.csv", text)
    target = 'la"bel' if 'la""bel' in text else "label"
    fast, careful = both_passes(p, [target])
    assert careful[0] == "ok" and (fast is None or fast == careful)


def reference_parse(path: Path, target: str):
    """The straightforward reading: csv module, float() per cell, labels as text."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    header = [h.strip() for h in rows[0]]
    t = header.index(target)
    X = np.array([[float(c) for i, c in enumerate(r) if i != t] for r in rows[1:]])
    return X, [r[t].strip() for r in rows[1:]], [h for i, h in enumerate(header) if i != t]


def test_fast_path_matches_reference_parse(tmp_path):
    rng = np.random.default_rng(7)
    n = 3000
    cols = {
        "w": [repr(v) for v in (rng.normal(size=n) * 10.0 ** rng.integers(-30, 30, n)).tolist()],  # full precision, exponents
        "species": rng.choice(["setosa", "versicolor", '"virginica"', " 01", "1", '"a,b"', '"x""y"'], n).tolist(),
        "x": [f"{v:.3f}" for v in rng.uniform(-5, 5, n)],
        "y": rng.integers(-10**6, 10**6, n).astype(str).tolist(),
        "z": [f" {v:.6e} " for v in rng.normal(size=n)],
    }
    cols["x"][5], cols["y"][6] = "-0.0", "+7"
    order = ["x", "species", "w", "z", "y"]
    text = ",".join(order) + "\r\n" + "".join(",".join(cols[c][i] for c in order) + "\r\n" for i in range(n))
    p = write(tmp_path, "mixed.csv", text)
    X_ref, labels_ref, features_ref = reference_parse(p, "species")

    fast = _read_csv_fast(p, ["species"], ",", np.float64)
    assert fast is not None  # this file is the fast path's to read
    X, labels, features, _ = fast
    assert X.dtype == np.float64 and np.array_equal(X, X_ref) and np.array_equal(np.signbit(X), np.signbit(X_ref))
    assert labels[0].texts() == labels_ref and features == features_ref == ["x", "w", "z", "y"]

    X2, names, raw = read_rows(p, "species")
    assert np.array_equal(X2, X_ref) and [r[0] for r in raw] == labels_ref and names == features_ref
    d = load_file(p, "species")
    classes = sorted(set(labels_ref))
    assert d.class_names == classes == ["01", "1", "a,b", "setosa", "versicolor", "virginica", 'x"y']
    index = {c: i for i, c in enumerate(classes)}
    ref = from_arrays("mixed", X_ref, np.array([index[v] for v in labels_ref]), features_ref, classes, "multiclass")
    assert d.fingerprint() == ref.fingerprint()  # same float32 features, labels, split


def test_numeric_labels_sort_numerically_and_keep_text(tmp_path):
    p = write(tmp_path, "n.csv", "a,label\n" + "".join(f"{i},{['10', '2', '02'][i % 3]}\n" for i in range(30)))
    assert load_file(p, "label").class_names == ["02", "2", "10"]


def test_several_targets_on_both_passes(tmp_path):
    text = "x,a,b\n" + "".join(f"{i},{i % 2},{'true' if i > 9 else 'false'}\n" for i in range(20))
    p = write(tmp_path, "m.csv", text)
    fast, careful = both_passes(p, ["a", "b"])
    assert fast == careful
    d = load_file(p, "a,b")
    assert d.task == "multilabel" and d.y_train.shape == (16, 2)
    bad = write(tmp_path, "bad.csv", text.replace("5,1,false", "5,1,maybe"))
    with pytest.raises(DataError, match=r"bad\.csv: column 'b', row 5: multilabel targets must be 0 or 1; got 'maybe'"):
        load_file(bad, "a,b")


def test_read_rows_without_target_reads_every_column(tmp_path):
    p = write(tmp_path, "in.csv", "a,b\n1,2\n3,4\n")
    X, names, raw = read_rows(p, None)
    assert X.tolist() == [[1.0, 2.0], [3.0, 4.0]] and names == ["a", "b"] and raw is None
    assert _read_csv(p, [])[0].dtype == np.float64


def test_target_list_without_names_is_refused(tmp_path):
    p = write(tmp_path, "in.csv", "a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match="name the label column"):
        load_file(p, " , ")


def test_reading_is_streamed_in_batches(tmp_path, monkeypatch):
    """Many pyarrow batches (tiny blocks) give the same arrays as one."""
    import zoo.data.csv_reader as csv_reader

    text = "a,label\n" + "".join(f"{i / 7!r},{'xyz'[i % 3]}\n" for i in range(500))
    p = write(tmp_path, "s.csv", text)
    one = _read_csv_fast(p, ["label"], ",", np.float64)
    monkeypatch.setattr(csv_reader, "CSV_BLOCK_BYTES", 64)
    many = _read_csv_fast(p, ["label"], ",", np.float64)
    assert np.array_equal(one[0], many[0]) and one[1][0].texts() == many[1][0].texts()
