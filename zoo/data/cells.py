"""Bad cells gathered while reading, so one error names the first several (line or row, column, what is wrong)."""

from __future__ import annotations

from pathlib import Path

from zoo.data.dataset import DataError

MAX_BAD_CELLS = 20  # listed in one error; the count covers them all


class BadCells:
    """Collects bad-cell messages in file order and raises them together."""

    def __init__(self, path: Path):
        self.path, self.count = path, 0
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        """Record one bad cell ('column 'a', line 3: 'x' is not a number'); only the first MAX_BAD_CELLS are kept."""
        self.count += 1
        if len(self.messages) < MAX_BAD_CELLS:
            self.messages.append(message)

    def __bool__(self) -> bool:
        return self.count > 0

    def raise_if_any(self, suffix: str = "") -> None:
        """One cell: the one-line error as always; several: their count and the first MAX_BAD_CELLS, one a line."""
        if not self.count:
            return
        if self.count == 1:
            raise DataError(f"{self.path}: {self.messages[0]}{suffix}")
        shown = "" if self.count <= MAX_BAD_CELLS else f"; the first {MAX_BAD_CELLS}"
        lines = "\n".join(f"  {m}" for m in self.messages)
        raise DataError(f"{self.path}: {self.count} bad cells{shown}{suffix}:\n{lines}")
