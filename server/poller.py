"""Poll mode: rescan the repository and bring every model in line with its folder, without one slow model
holding up the others."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.server.registry import Registry

log = logging.getLogger(__name__)


async def names_to_poll(registry: Registry) -> list[str] | None:
    """Model folders on disk plus the models known (a vanished folder must be seen to be unloaded); None if unlisted."""
    try:
        names = set(await registry.scan())
    except Exception as e:
        log.error("polling the repository failed: %s", e)
        return None
    return sorted(names | set(registry.names()))


async def poll_model(registry: Registry, name: str) -> None:
    """Sync one model, logging (not raising) what went wrong: the poll goes on."""
    try:
        await registry.sync(name)
    except Exception as e:
        log.error("polling model %s failed: %s", name, e)


async def poll_once(registry: Registry) -> None:
    """One scan, every model synced concurrently; returns when all are done."""
    names = await names_to_poll(registry)
    if names is not None:
        await asyncio.gather(*(poll_model(registry, n) for n in names))


async def poll_forever(registry: Registry, interval_s: float) -> None:
    """Rescan every interval_s seconds; a model still syncing from an earlier scan (a slow or hung read) is skipped,
    so it never delays the others."""
    syncing: dict[str, asyncio.Task] = {}
    try:
        while True:
            await asyncio.sleep(interval_s)
            for name in await names_to_poll(registry) or []:
                task = syncing.get(name)
                if task is None or task.done():
                    syncing[name] = asyncio.get_running_loop().create_task(poll_model(registry, name))
    finally:
        for task in syncing.values():
            task.cancel()
