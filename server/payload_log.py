"""The payload log: sampled requests and their answers as JSON lines, written off the request path.

The request path only decides whether a request is sampled and puts a record on a bounded queue; when the queue
is full the record is dropped and counted, so the log can never slow or fail a request. One thread drains the
queue, serialises with orjson (numpy arrays included), appends to `payloads-<UTC time>.jsonl` in the folder and
starts a new file when the current one passes the size limit; with a URL it also posts the records as CloudEvents
(the batched JSON form KServe's logger speaks), retrying a few times. `close()` writes what is queued and stops.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

log = logging.getLogger("zoo.server")

EVENT_TYPE = "org.zoo.inference.response"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
POST_RETRIES = 3
POST_BATCH = 100  # records per CloudEvents batch


@dataclass(slots=True)
class PayloadRecord:
    """One sampled request and its answer, as the request path hands it over (serialised later, on the thread)."""

    model: str
    version: int
    request_id: str
    time_ns: int  # when the answer was ready (Unix time)
    inputs: np.ndarray
    threshold: float | list[float] | None  # per class, for a multi-label request that sent one per class
    outputs: dict[str, np.ndarray]
    latency_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "id": self.request_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time_ns / 1e9)) + f".{self.time_ns % 10**9 // 1000:06d}Z",
            "inputs": self.inputs,
            "threshold": self.threshold,
            "outputs": self.outputs,
            "latency_ms": round(self.latency_ms, 3),
        }


class Sampler:
    """Takes exactly `fraction` of what it is offered, evenly spread: the k-th offer is taken when floor(k * f) grows."""

    def __init__(self, fraction: float):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"a sampling fraction is in [0, 1]; got {fraction}")
        self.fraction = fraction
        self._offered = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            before = int(self._offered * self.fraction)
            self._offered += 1
            return int(self._offered * self.fraction) > before


class PayloadLog:
    """A folder of rotated JSON-lines files (and optionally a CloudEvents endpoint) fed through a bounded queue."""

    def __init__(
        self,
        folder: str | Path | None,
        *,
        max_bytes: int = 100 << 20,
        sample: float = 1.0,
        queue_size: int = 10_000,
        url: str | None = None,
        source: str = "zoo",
    ):
        if folder is None and url is None:
            raise ValueError("a payload log needs a folder or a URL")
        self.folder = Path(folder) if folder is not None else None
        self.max_bytes = max_bytes
        self.url = url
        self.source = source
        self.sampler = Sampler(sample)
        self.written = 0  # records written to a file (or posted, without a folder)
        self.dropped = 0  # records dropped because the queue was full
        self.post_failures = 0  # CloudEvents batches not delivered after every retry
        self._queue: queue.Queue[PayloadRecord | None] = queue.Queue(maxsize=queue_size)
        self._file: BinaryIO | None = None
        self._file_bytes = 0
        self._events: list[dict] = []
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._drain, name="zoo-payload-log", daemon=True)
        self._thread.start()

    def sampled(self) -> bool:
        """Whether the next request goes in the log (call once per request, before building its record)."""
        return self.sampler.take()

    def put(self, record: PayloadRecord) -> None:
        """Queue a sampled request's record; never blocks: a full queue drops it and counts it."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Write (and post) everything queued, then stop the thread and close the file."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.warning("payload log: the queue did not drain within %.0f s; records still queued are lost", timeout)
            return
        self._thread.join(timeout)

    # the writer thread

    def _drain(self) -> None:
        while True:
            record = self._queue.get()
            batch = [record]
            while record is not None and not self._queue.empty() and len(batch) < POST_BATCH:
                record = self._queue.get_nowait()
                batch.append(record)
            records = [r for r in batch if r is not None]
            try:
                self._write(records)
            except Exception:  # a full disk or a bad record must not stop the log for good
                log.exception("payload log: %d records not written", len(records))
            if record is None:
                self._flush_events(final=True)
                if self._file is not None:
                    self._file.close()
                return

    def _write(self, records: list[PayloadRecord]) -> None:
        for r in records:
            line = orjson.dumps(r.to_json(), option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
            if self.folder is not None:
                self._append(line)
            if self.url is not None:
                self._events.append(self._event(r))
        if self._file is not None:
            self._file.flush()  # readers (and `zoo drift`) see whole lines as soon as the queue runs dry
        self.written += len(records)
        self._flush_events(final=False)

    def _append(self, line: bytes) -> None:
        assert self.folder is not None
        if self._file is None or self._file_bytes + len(line) > self.max_bytes and self._file_bytes > 0:
            if self._file is not None:
                self._file.close()
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() % 10**9 // 1000:06d}"
            self._file = open(self.folder / f"payloads-{stamp}.jsonl", "ab")  # noqa: SIM115 (kept open between batches)
            self._file_bytes = 0
        file = self._file
        file.write(line)
        self._file_bytes += len(line)

    def _event(self, r: PayloadRecord) -> dict:
        return {
            "specversion": "1.0",
            "id": r.request_id or f"{r.model}-{r.version}-{r.time_ns}",
            "source": f"{self.source}/{r.model}/{r.version}",
            "type": EVENT_TYPE,
            "time": r.to_json()["time"],
            "datacontenttype": "application/json",
            "data": r.to_json(),
        }

    def _flush_events(self, final: bool) -> None:
        while self._events and (final or len(self._events) >= POST_BATCH or self._queue.empty()):
            batch, self._events = self._events[:POST_BATCH], self._events[POST_BATCH:]
            self._post(batch)

    def _post(self, events: list[dict]) -> None:
        assert self.url is not None
        body = orjson.dumps(events, option=orjson.OPT_SERIALIZE_NUMPY)
        for attempt in range(POST_RETRIES):
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": CLOUDEVENTS_BATCH}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if 200 <= response.status < 300:
                        return
            except OSError as e:
                log.debug("payload log: posting %d events failed (try %d): %s", len(events), attempt + 1, e)
            time.sleep(0.1 * 2**attempt)  # back off a little; this is the log's own thread, not a request's
        self.post_failures += 1
        log.warning("payload log: %d events not delivered to %s after %d tries", len(events), self.url, POST_RETRIES)
