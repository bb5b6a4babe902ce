"""ServerSettings: every knob of the server, built once in the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

ENV_PREFIX = "ZOO_"


@dataclass
class ServerSettings:
    """Configuration of one zoo-server process (defaults are the production defaults)."""

    repository: str = "./models"  # root of the versioned model repository
    host: str = "0.0.0.0"
    port: int = 8001  # gRPC port; 0 binds an ephemeral port (tests)
    metrics_port: int = 8002  # Prometheus HTTP port; 0 = ephemeral, -1 = disabled
    max_batch_size: int = 1024  # rows per model call; larger requests are split, not refused
    max_queue_delay_us: int = 500  # longest a request waits for others to join its batch
    max_queue_rows: int = 0  # rows waiting per model before Overloaded; 0 = 64 * max_batch_size
    intra_op_threads: int = 1  # onnxruntime threads per model: small MLPs gain nothing from more
    require_gpu: bool = False  # refuse to start unless CUDA really runs the models
    poll_interval_s: float = 0.0  # rescan the repository every N seconds; 0 = only on RepositoryModelLoad
    max_message_bytes: int = 64 * 1024 * 1024  # gRPC send/receive cap: max_batch_size rows of a wide model fit
    grace_s: float = 10.0  # how long in-flight requests may take to finish on shutdown
    event_loop: str = "auto"  # auto (uvloop when installed) | uvloop | asyncio
    inline_elements: int = 16384  # CPU batches of at most this many values run on the event loop (no thread hop)
    tls_cert: str = ""  # PEM certificate chain; with tls_key, the gRPC port speaks TLS
    tls_key: str = ""  # PEM private key

    @property
    def queue_rows(self) -> int:
        """The effective queue bound in rows."""
        return self.max_queue_rows if self.max_queue_rows > 0 else 64 * self.max_batch_size

    def validate(self) -> "ServerSettings":
        """Return self after checking the values make sense; raises ValueError naming the bad one."""
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_queue_delay_us < 0:
            raise ValueError(f"max_queue_delay_us must be >= 0, got {self.max_queue_delay_us}")
        if self.intra_op_threads < 0:
            raise ValueError(f"intra_op_threads must be >= 0, got {self.intra_op_threads}")
        if self.metrics_port < -1 or not 0 <= self.port <= 65535:
            raise ValueError(f"bad port: port={self.port} metrics_port={self.metrics_port}")
        if self.event_loop not in ("auto", "uvloop", "asyncio"):
            raise ValueError(f"event_loop must be auto, uvloop or asyncio, got {self.event_loop!r}")
        if self.poll_interval_s < 0:
            raise ValueError(f"poll_interval_s must be >= 0, got {self.poll_interval_s}")
        return self


def env_defaults(environ: Mapping[str, str]) -> dict:
    """Settings found in `ZOO_<FIELD>` variables of `environ`, converted to the field's type."""
    out: dict = {}
    for f in fields(ServerSettings):
        raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is None:
            continue
        kind = type(f.default)
        if kind is bool:
            out[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            try:
                out[f.name] = kind(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    return out
