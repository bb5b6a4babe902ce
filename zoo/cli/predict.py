"""`zoo predict`: send the rows of a CSV/NPY/NPZ file to a running zoo server and print or save the answers."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click
import numpy as np

from zoo.cli.common import fail

SUFFIXES = (".csv", ".npy", ".npz")


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.reader(f):
            if any(cell.strip() for cell in row):
                return [c.strip() for c in row]
    return []


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_npz(path: Path) -> tuple[np.ndarray, list[str] | None]:
    with np.load(path, allow_pickle=False) as z:
        if "X" not in z:
            raise ValueError(f"{path}: expected an array 'X' of rows; found {', '.join(z.files) or 'none'}")
        names = [str(s) for s in z["feature_names"]] if "feature_names" in z else None
        return np.asarray(z["X"], dtype=np.float64), names


def _shown(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "") if names else "none"


def _unmatched(path: Path, features: list[str], names: list[str]) -> ValueError:
    """The refusal of a header that does not name every feature: what is missing, what is unexpected, what to do."""
    missing = [f for f in features if f not in names]
    unexpected = [n for n in names if n not in features]
    return ValueError(
        f"{path}: the column names do not name every feature of the model: missing {_shown(missing)}; "
        f"unexpected {_shown(unexpected)}. Rename the columns to the model's feature names ({_shown(features)}), "
        "or pass --by-position to take the columns in file order"
    )


def read_input(path: Path, features: list[str], by_position: bool = False) -> tuple[np.ndarray, str | None]:
    """(the file's rows as [N, F] in the model's feature order, a note for stderr or None).

    Named columns (a CSV header, an NPZ's feature_names) must name every model feature; their order doesn't matter
    and other columns (a label) are ignored. A file without names (a headerless CSV, an NPY) is read by position,
    and the note says so; `by_position` takes the columns in file order on purpose, names or not.
    """
    from zoo.data.files import read_rows

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npy or .npz")
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    names: list[str] | None = None
    if suffix == ".csv":
        header = _csv_header(path)
        if header and all(_is_number(c) for c in header):  # no header line: every row is data
            X = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
        elif by_position:
            X, _, _ = read_rows(path, None)
        else:
            if not set(features) <= set(header):
                raise _unmatched(path, features, header)
            # Columns that are not features (a label, an id) are read as "targets": kept out of X, not parsed as numbers.
            extra = [h for h in header if h not in features]
            X, names, _ = read_rows(path, ",".join(extra) or None)
    elif suffix == ".npz":
        X, names = _read_npz(path)
        names = None if by_position else names
    else:
        X, _, _ = read_rows(path, None)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"{path}: expected rows [N, F]; got an array of shape {list(X.shape)}")
    if names is not None:
        if not set(features) <= set(names):
            raise _unmatched(path, features, names)
        return X[:, [names.index(f) for f in features]], None
    if X.shape[1] != len(features):
        raise ValueError(f"{path}: rows have {X.shape[1]} values; the model needs {len(features)} ({_shown(features)})")
    if by_position:
        return X, None
    return X, f"note: {path} names no columns: its {X.shape[1]} columns are read by position as {_shown(features)}"


def records(pred) -> list[dict]:
    """One JSON-ready dict per row: label name, probabilities by class name, one_hot as the set class names."""
    names = pred.class_names
    out = []
    for i, (p, oh, k) in enumerate(zip(pred.probabilities.tolist(), pred.one_hot.tolist(), pred.labels.tolist(), strict=True)):
        out.append(
            {
                "row": i,
                "label": names[k] if k >= 0 else None,
                "probabilities": dict(zip(names, p, strict=True)),
                "one_hot": [n for n, v in zip(names, oh, strict=True) if v],
            }
        )
    return out


def write_csv(pred, path: Path) -> None:
    """row, label, one probability column per class, one_hot as class names joined by '|'."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "label", *pred.class_names, "one_hot"])
    for r in records(pred):
        w.writerow([r["row"], r["label"] or "", *(f"{p:.6g}" for p in r["probabilities"].values()), "|".join(r["one_hot"])])
    path.write_text(buf.getvalue(), encoding="utf-8")


def table(pred) -> str:
    """A plain-text table: row, label name, its probability (the top probability when no class is set)."""
    lines = [("row", "label", "probability")]
    for i, (k, p) in enumerate(zip(pred.labels.tolist(), pred.probabilities.tolist(), strict=True)):
        lines.append((str(i), pred.class_names[k] if k >= 0 else "(none)", f"{(p[k] if k >= 0 else max(p)):.4f}"))
    widths = [max(len(line[c]) for line in lines) for c in range(3)]
    return "\n".join(f"{a:>{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in lines)


def threshold_option(text: str | None) -> float | list[float] | None:
    """--threshold as a number in [0, 1] or a list of them (one per class); the server checks the count."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected a number in [0, 1] or one per class separated by commas; got {text!r}") from None
    if not all(0.0 <= v <= 1.0 for v in values):
        raise click.BadParameter(f"every value must be in [0, 1]; got {text!r}")
    return values[0] if len(values) == 1 else values


@click.command()
@click.argument("model")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rows to predict: .csv (a header must name every model feature; none: by position), .npy or .npz (array X).",
)
@click.option("--by-position", is_flag=True, help="Take the file's columns in file order as the model's features, ignoring any header.")
@click.option("--url", default="localhost:8001", show_default=True, help="Server address host:port.")
@click.option(
    "--threshold",
    default=None,
    callback=lambda ctx, param, text: threshold_option(text),
    help="Decision threshold in [0, 1], or one per class separated by commas (multilabel; default: the model's own).",
)
@click.option("--version", "model_version", default=None, help="Model version (default: the latest the server serves).")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write .csv or .json instead of printing a table."
)
@click.option("--tls", is_flag=True, help="Connect over TLS (system root certificates unless --tls-ca).")
@click.option(
    "--tls-ca", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PEM CA certificates to trust (implies --tls)."
)
@click.option(
    "--tls-cert", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PEM client certificate for mTLS (with --tls-key)."
)
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PEM private key of --tls-cert.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="ZOO_AUTH_TOKEN_FILE",
    help="File holding the server's bearer token [env ZOO_AUTH_TOKEN_FILE; or the token itself in ZOO_AUTH_TOKEN].",
)
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per server call.")
def predict(
    model, input_path, by_position, url, threshold, model_version, output, tls, tls_ca, tls_cert, tls_key, token_file, timeout
) -> None:
    """Send the rows of a file to a running zoo server and print (or save) the predictions."""
    import os

    from zoo.client import ClientError, ZooClient
    from zoo.data.dataset import DataError

    if output is not None and output.suffix.lower() not in (".csv", ".json"):
        fail(f"{output}: unsupported output type {output.suffix!r}; expected .csv or .json")
    if bool(tls_cert) != bool(tls_key):
        fail("mTLS needs both --tls-cert and --tls-key")
    token = token_file.read_text(encoding="utf-8").strip() if token_file else os.environ.get("ZOO_AUTH_TOKEN") or None
    security = dict(
        tls=tls,
        root_certificates=tls_ca.read_bytes() if tls_ca else None,
        token=token,
        certificate_chain=tls_cert.read_bytes() if tls_cert else None,
        private_key=tls_key.read_bytes() if tls_key else None,
    )
    try:
        with ZooClient(url, timeout=timeout, **security) as client:
            info = client.metadata(model, model_version)
            X, note = read_input(input_path, info.feature_names, by_position)
            if note:
                click.echo(note, err=True)
            pred = client.predict(model, X, threshold=threshold, version=model_version)
    except ClientError as e:
        if e.code.name == "UNAVAILABLE" and not_reached(e.details):
            # gRPC's own text ("failed to connect to all addresses; last error: ...") means nothing to a newcomer
            fail(
                f"no zoo server answers at {url} (UNAVAILABLE): start one with `zoo serve` (or `make serve`), "
                f"or pass --url HOST:PORT of a running server's gRPC port"
            )
        where = f"server {url}" if e.code.name == "DEADLINE_EXCEEDED" else f"model {model!r}"
        fail(f"{where}: {e.code.name}: {e.details}")
    except (DataError, ValueError, OSError) as e:
        fail(str(e))
    if output is None:
        click.echo(table(pred))
    elif output.suffix.lower() == ".csv":
        write_csv(pred, output)
        click.echo(f"wrote {len(pred)} predictions of {model} v{pred.version} to {output}")
    else:
        output.write_text(json.dumps(records(pred), indent=2) + "\n", encoding="utf-8")
        click.echo(f"wrote {len(pred)} predictions of {model} v{pred.version} to {output}")


def not_reached(details: str) -> bool:
    """Whether an UNAVAILABLE came from gRPC finding no server (a server's own UNAVAILABLE is a model not ready)."""
    return any(
        k in details for k in ("failed to connect", "Connection refused", "DNS resolution failed", "connections to all backends failing")
    )
