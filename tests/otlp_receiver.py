"""A real OTLP/HTTP trace receiver on 127.0.0.1 for tests: it decodes every export it gets into span messages."""

from __future__ import annotations

import http.server
import threading
from contextlib import contextmanager


@contextmanager
def otlp_receiver():
    """(base URL, the list the received spans are appended to), while the receiver runs."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    spans: list = []
    arrived = threading.Condition()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            with arrived:
                spans.extend(s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
                arrived.notify_all()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", spans
    finally:
        server.shutdown()
