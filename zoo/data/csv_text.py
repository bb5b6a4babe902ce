"""CSV as text: the UTF-8 check, records with their line numbers, the header's columns, a bound on the rows."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from zoo.data.dataset import DataError
from zoo.data.labels import missing_column
from zoo.data.sniff import delimiter_name, looks_like


def kind(delimiter: str) -> str:
    """CSV or TSV, for messages."""
    return "TSV" if delimiter == "\t" else "CSV"


def how_read(delimiter: str) -> str:
    """' (read as semicolon-separated)': said wherever the delimiter could be the reason for an error."""
    return f" (read as {delimiter_name(delimiter)}-separated)"


def columns(path: Path, header: list[str], targets: list[str], delimiter: str) -> tuple[list[int], list[int]]:
    """(target column indices in --target order, feature column indices in file order) of a stripped header."""
    missing = [t for t in targets if t not in header]
    if missing:
        raise missing_column(path, missing[0], header, how_read(delimiter))
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DataError(f"{path}: column {dup!r} appears twice in the header")
    t_idx = [header.index(t) for t in targets]
    f_idx = [i for i in range(len(header)) if i not in t_idx]
    if not f_idx:
        raise DataError(f"{path}: no feature columns besides the target{how_read(delimiter)}")
    return t_idx, f_idx


def check_utf8(path: Path, delimiter: str) -> None:
    """Raise a DataError at the first byte that keeps the file from being UTF-8 text (a NUL counts: binary)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with open(path, "rb") as f:
        head = f.read(64)
        f.seek(0)
        for chunk in iter(partial(f.read, 1 << 20), b""):
            bad = _first_non_text(decoder, chunk)
            if bad is not None:
                at, byte = bad
                _not_utf8(path, delimiter, head, byte, offset + at, lines + chunk.count(b"\n", 0, max(at, 0)) + 1)
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:  # a multi-byte character cut off by the end of the file
            _not_utf8(path, delimiter, head, e.object[e.start], offset - len(e.object) + e.start, lines + 1)


def _first_non_text(decoder, chunk: bytes) -> tuple[int, int] | None:
    """(index in `chunk`, byte) of its first NUL or undecodable byte; the index is negative in carried-over bytes."""
    found = []
    nul = chunk.find(b"\x00")
    if nul >= 0:
        found.append((nul, 0))
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError as e:  # e.object is the bytes the decoder carried over from the last chunk + this one
        found.append((e.start - (len(e.object) - len(chunk)), e.object[e.start]))
    return min(found, default=None)


def _not_utf8(path: Path, delimiter: str, head: bytes, byte: int, offset: int, line: int):
    """Raise the not-UTF-8-text error."""
    known = looks_like(head)
    if known:
        came = f"it looks like {known}"
    elif byte == 0:
        came = "it looks like binary data"
    else:  # a text file in a legacy 8-bit encoding, most often
        came = "is it Latin-1 or Windows-1252? save it as UTF-8"
    k = kind(delimiter)
    raise DataError(
        f"{path}: not a UTF-8 text {k} file (byte 0x{byte:02x} at offset {offset}, line {line}; "
        f"{came}); expected a UTF-8 {k} file with a header line"
    )


def first_record(path: Path, delimiter: str) -> list[str] | None:
    """The raw cells of the first non-blank record (the header), or None."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next((row for _, row in records(csv.reader(f, delimiter=delimiter))), None)


def records(reader) -> Iterator[tuple[int, list[str]]]:
    """(file line where the record starts, cells) of every record with a non-blank cell."""
    line = 1
    for row in reader:
        if any(cell.strip() for cell in row):
            yield line, row
        line = reader.line_num + 1


def max_records(path: Path) -> int:
    """An upper bound on a file's records: each one but the last ends with a newline (\\n, \\r\\n or \\r)."""
    lines = 0
    with open(path, "rb") as f:
        for chunk in iter(partial(f.read, 1 << 20), b""):
            lines += chunk.count(b"\n")
            if b"\r" in chunk:  # a lone \r ends a line too (a \r\n split across chunks counts twice: still a bound)
                lines += chunk.count(b"\r") - chunk.count(b"\r\n")
    return lines + 1
