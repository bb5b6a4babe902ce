"""What a caller of the batcher does, for tests that drive a Batcher directly."""

from __future__ import annotations


async def submit(batcher, rows):
    """Queue the rows, await their outputs, withdraw them if the caller goes away."""
    future = batcher.enqueue(rows)
    try:
        return await future
    except BaseException:
        future.cancel()  # the worker skips cancelled items
        raise
