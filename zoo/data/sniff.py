"""What a file is from its first bytes, and what a text table's delimiter looks like, for errors that say what came."""

from __future__ import annotations

from pathlib import Path

_MAGIC = (  # what a file is, from its first bytes, to say what came instead of the expected format
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive (an .npz or .xlsx file?)"),
    (b"PAR1", "a Parquet file"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) file"),
    (b"%PDF", "a PDF document"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def looks_like(head: bytes) -> str | None:
    """A known format from a file's first bytes, or None."""
    return next((what for magic, what in _MAGIC if head.startswith(magic)), None)


def what_came(path: Path) -> str:
    """A few words on what a file holds, for an error that says what came instead of the expected format."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "it is empty"
    known = looks_like(head)
    if known:
        return f"it looks like {known}"
    try:
        head.decode("utf-8")
        return "it looks like text"
    except UnicodeDecodeError:
        return "it starts with bytes " + " ".join(f"{b:02x}" for b in head[:8])


def sniff_delimiter(path: Path, default: str) -> str:
    """The delimiter of a text table from its first line: `default` unless the line lacks it and holds another.

    A header split by `default` into one column while it holds semicolons, tabs or pipes is the usual mistake
    (a spreadsheet saved with a semicolon in a comma locale); the most frequent of those is taken.
    """
    with open(path, "rb") as f:
        first = f.readline(1 << 16).decode("utf-8", errors="replace")
    if default in first:
        return default
    counts = {d: first.count(d) for d in DELIMITER_NAMES if d != default}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else default


def delimiter_name(delimiter: str) -> str:
    """'comma', 'semicolon', 'tab', ... for messages."""
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))
