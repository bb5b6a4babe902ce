"""The payload log: exactly the sampled requests, rotated files, a full queue that drops instead of waiting, and
CloudEvents delivered to a real local HTTP receiver (with a retry)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from zoo.server.payload_log import CLOUDEVENTS_BATCH, EVENT_TYPE, PayloadLog, PayloadRecord, Sampler

pytestmark = pytest.mark.timeout(60)  # a hang guard: nothing here waits on time


def record(i: int, rows: int = 1) -> PayloadRecord:
    x = np.full((rows, 3), i, dtype=np.float32)
    outputs = {"probabilities": np.full((rows, 2), 0.5, np.float32), "label": np.zeros(rows, np.int64)}
    return PayloadRecord("iris", 2, f"req-{i}", 1_764_000_000_000_000_000 + i, x, 0.7 if i % 2 else None, outputs, 1.5)


def lines(folder: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(folder.glob("payloads-*.jsonl")) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fraction, taken", [(1.0, list(range(20))), (0.25, [3, 7, 11, 15, 19]), (0.0, [])])
def test_the_sampler_takes_exactly_its_fraction_evenly(fraction, taken):
    sampler = Sampler(fraction)
    assert [k for k in range(20) if sampler.take()] == taken


def test_the_log_holds_exactly_the_sampled_requests_with_their_answers(tmp_path):
    plog = PayloadLog(tmp_path, sample=0.5)
    for i in range(10):
        if plog.sampled():
            plog.put(record(i))
    plog.close()
    got = lines(tmp_path)
    assert [r["id"] for r in got] == ["req-1", "req-3", "req-5", "req-7", "req-9"]
    first = got[0]
    assert first["model"] == "iris" and first["version"] == 2 and first["threshold"] == 0.7 and first["latency_ms"] == 1.5
    assert first["inputs"] == [[1.0, 1.0, 1.0]] and first["outputs"]["label"] == [0]
    assert first["time"].endswith("Z") and plog.written == 5 and plog.dropped == 0


def test_files_rotate_by_size_and_keep_every_record_in_order(tmp_path):
    plog = PayloadLog(tmp_path, max_bytes=2_000)
    for i in range(40):
        plog.put(record(i, rows=2))
    plog.close()
    files = sorted(tmp_path.glob("payloads-*.jsonl"))
    assert len(files) > 3 and all(f.stat().st_size <= 2_000 for f in files)
    assert [r["id"] for r in lines(tmp_path)] == [f"req-{i}" for i in range(40)]


class HeldLog(PayloadLog):
    """The real log, whose writer thread waits at a gate before writing: the queue fills while requests go on."""

    def __init__(self, *args, **kwargs):
        self.entered, self.gate = threading.Event(), threading.Event()
        super().__init__(*args, **kwargs)

    def _write(self, records):
        self.entered.set()
        assert self.gate.wait(30)
        super()._write(records)


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path):
    plog = HeldLog(tmp_path, queue_size=5)
    plog.put(record(0))
    assert plog.entered.wait(30)  # the writer holds record 0 at the gate; the queue is empty
    for i in range(1, 11):
        plog.put(record(i))  # returns at once: five fit in the queue, five are dropped
    assert plog.dropped == 5
    plog.gate.set()
    plog.close()
    assert [r["id"] for r in lines(tmp_path)] == [f"req-{i}" for i in range(6)] and plog.written == 6


def test_records_are_posted_as_cloudevents_with_a_retry(tmp_path):
    received: list[tuple[str, list]] = []
    refusals = [1]  # the receiver refuses the first batch once: the log tries again

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if refusals[0]:
                refusals[0] -= 1
                self.send_response(503)
            else:
                received.append((self.headers["Content-Type"], json.loads(body)))
                self.send_response(202)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plog = PayloadLog(tmp_path, url=f"http://127.0.0.1:{server.server_address[1]}/events")
        for i in range(3):
            plog.put(record(i))
        plog.close()
    finally:
        server.shutdown()
    events = [e for content_type, batch in received for e in batch]
    assert {content_type for content_type, _ in received} == {CLOUDEVENTS_BATCH}
    assert [e["id"] for e in events] == ["req-0", "req-1", "req-2"] and plog.post_failures == 0
    assert all(e["specversion"] == "1.0" and e["type"] == EVENT_TYPE and e["source"] == "zoo/iris/2" for e in events)
    assert events[1]["data"]["threshold"] == 0.7 and [r["id"] for r in lines(tmp_path)] == ["req-0", "req-1", "req-2"]
