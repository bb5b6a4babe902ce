"""Logging set-up of the server's processes: one line per record on stderr, a worker's lines tagged with its index."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(tag: str = "") -> None:
    """One line per record on stderr (a worker's lines carry its tag)."""
    fmt = LOG_FORMAT.replace("%(name)s", f"%(name)s[{tag}]") if tag else LOG_FORMAT
    logging.basicConfig(level=logging.INFO, format=fmt, stream=sys.stderr, force=True)
