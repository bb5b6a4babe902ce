"""ServerSettings: every knob of the server in one pydantic-settings object (flags > ZOO_* variables > defaults).

Both server commands (`zoo serve`, `zoo-server`) are generated from these fields (server/cli.py), so a flag, its
range, its default and its ZOO_<NAME> variable are stated once, here. Nothing is read at import.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zoo.core.contract import DEFAULT_BATCHING
from zoo.core.environment import unknown_variables

ENV_PREFIX = "ZOO_"
ModelControl = Literal["none", "poll", "explicit"]


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the flag or the ZOO_* variable it came from."""


class ServerSettings(BaseSettings):
    """Configuration of one zoo server (defaults are the production defaults of `zoo-server` and the container)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, frozen=True)

    repository: str = Field("./models", description="model repository root")
    host: str = Field("0.0.0.0", description="address to bind")
    port: int = Field(8001, ge=0, le=65535, description="gRPC port (0: any free port)")
    http_port: int = Field(
        8000, ge=-1, le=65535, description="HTTP/REST port of the v2 protocol and the model pages (0: any free port, -1: off)"
    )
    metrics_port: int = Field(8002, ge=-1, le=65535, description="Prometheus /metrics port (0: any free port, -1: off)")
    workers: int = Field(
        1,
        ge=1,
        le=256,
        description="server processes sharing the ports (SO_REUSEPORT) under a supervisor; onnxruntime threads are split between them",
    )
    model_control_mode: ModelControl = Field(
        "none",
        description="none: serve what is in the repository at start, no repository RPCs; poll: also rescan every "
        "--poll-interval s; explicit: load and unload only by RepositoryModelLoad/Unload (and --load-model)",
    )
    poll_interval: float = Field(2.0, gt=0, description="seconds between repository scans in poll mode")
    load_model: list[str] = Field(
        default_factory=list, description="explicit mode: models to load at start ('*': all); repeat the flag for several"
    )
    allow_external_symlinks: bool = Field(False, description="serve model folders that are symlinks leaving the repository")
    max_model_bytes: int = Field(1 << 30, ge=1, description="largest model.onnx the server reads, in bytes")
    load_timeout: float = Field(120.0, gt=0, description="seconds one version may take to read, open and self-check")
    allow_shared_memory: bool = Field(False, description="let clients on this host register system shared memory for tensors")
    max_batch_size: int = Field(DEFAULT_BATCHING.max_batch_size, ge=1, description="rows per model call; larger requests are split")
    max_queue_delay_us: int = Field(
        DEFAULT_BATCHING.max_queue_delay_us,
        ge=0,
        description="longest a batch waits for as many requests as the previous batch held (a lone caller never waits; 0: never wait)",
    )
    max_queue_rows: int = Field(0, ge=0, description="rows queued per model before RESOURCE_EXHAUSTED (0: 64 x max batch size)")
    intra_op_threads: int = Field(1, ge=0, description="onnxruntime threads per model call (0: one per core)")
    require_gpu: bool = Field(False, description="refuse to start unless the CUDA provider really runs the models")
    max_message_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="largest request or response message in bytes")
    max_json_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest JSON part of an HTTP request in bytes; larger inputs go as binary tensor data"
    )
    http_body_timeout: float = Field(
        30.0, gt=0, description="seconds an HTTP request body may take, plus 1 s per --http-body-min-rate bytes received"
    )
    http_body_min_rate: int = Field(
        16384, ge=1, description="bytes per second an HTTP request body must keep up (stalls and trickles are cut off)"
    )
    http_max_connections: int = Field(
        0,
        ge=0,
        description="open HTTP connections; past it a new one closes the least recently active idle or stalled one "
        "(0: half the file-descriptor limit less 64, leaving the rest to gRPC)",
    )
    grace: float = Field(10.0, ge=0, description="seconds in-flight requests may take to finish on shutdown")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field("auto", description="event loop (auto: uvloop when installed)")
    tls_cert: str = Field("", description="PEM certificate chain: serve over TLS (with --tls-key)")
    tls_key: str = Field("", description="PEM private key of --tls-cert")
    tls_client_ca: str = Field("", description="PEM CA bundle: require client certificates signed by it (mTLS; needs --tls-cert)")
    auth_token_file: str = Field("", description="file holding a bearer token every RPC but health must send (Authorization: Bearer ...)")
    auth_token: str = Field(
        "", repr=False, description="the bearer token itself (environment only: ZOO_AUTH_TOKEN)", json_schema_extra={"cli": False}
    )
    max_concurrent_rpcs: int = Field(4096, ge=1, description="RPCs in progress at once (streams included); more are refused")
    max_streams_per_connection: int = Field(128, ge=1, description="concurrent HTTP/2 streams one connection may open")
    connection_idle_timeout: float = Field(300.0, gt=0, description="seconds before a connection with no RPC is closed")
    stream_idle_timeout: float = Field(300.0, gt=0, description="seconds a ModelStreamInfer stream may send nothing before it is closed")
    stream_first_message_timeout: float = Field(
        10.0, gt=0, description="seconds a new ModelStreamInfer stream may take to send its first request before it is closed"
    )
    max_streams_per_peer: int = Field(
        0, ge=0, description="ModelStreamInfer streams one client address may hold open (0: a quarter of --max-concurrent-rpcs)"
    )
    reuse_port: bool = Field(False, description="internal: a worker shares its ports with its siblings", json_schema_extra={"cli": False})
    keepalive_time: float = Field(60.0, gt=0, description="seconds between the server's keepalive pings on an idle connection")
    monitoring: bool = Field(
        True, description="watch each version's decisions and input drift against its training data (page and metrics)"
    )
    drift_window: int = Field(10_000, ge=100, le=1_000_000, description="served rows each version's drift figures cover (a sliding window)")
    drift_all_features: bool = Field(
        False, description="one drift and out-of-range series per feature even for wide models (else the 10 that moved most, and a summary)"
    )
    payload_log: str = Field("", description="folder for a JSON-lines log of sampled requests and their answers ('': no log)")
    payload_log_max_mb: float = Field(100.0, gt=0, description="size at which a payload log file is closed and a new one started")
    payload_log_sample: float = Field(1.0, ge=0, le=1, description="share of requests the payload log keeps (evenly spread)")
    payload_log_url: str = Field("", description="also POST the payload log's records as CloudEvents batches to this URL")
    otlp_endpoint: str = Field(
        "", description="send OpenTelemetry traces over OTLP/HTTP to this URL (also OTEL_EXPORTER_OTLP_ENDPOINT; '': none)"
    )
    trace_sample: float = Field(0.1, ge=0, le=1, description="share of requests traced when the caller sends no sampled traceparent")

    @model_validator(mode="after")
    def _check_together(self) -> ServerSettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("--tls-client-ca (mTLS) needs --tls-cert and --tls-key")
        if self.auth_token and self.auth_token_file:
            raise ValueError("give the bearer token either in ZOO_AUTH_TOKEN or in --auth-token-file, not both")
        return self

    def token(self) -> str:
        """The bearer token clients must send ('' when none is required); reads --auth-token-file."""
        if not self.auth_token_file:
            return self.auth_token
        try:
            with open(self.auth_token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            raise SettingsError(f"--auth-token-file {self.auth_token_file}: {e.strerror}") from None
        if not token:
            raise SettingsError(f"--auth-token-file {self.auth_token_file} is empty")
        return token

    @property
    def streams_per_peer(self) -> int:
        """The effective cap of open streams per client address."""
        return self.max_streams_per_peer or max(1, self.max_concurrent_rpcs // 4)

    @property
    def queue_rows(self) -> int:
        """The effective queue bound in rows."""
        return self.max_queue_rows if self.max_queue_rows > 0 else 64 * self.max_batch_size

    @property
    def batching(self):
        """The batching settings, as the contract states them (config.pbtxt and ModelConfig)."""
        from zoo.core.contract import Batching

        return Batching(self.max_batch_size, self.max_queue_delay_us)


class DevServerSettings(ServerSettings):
    """`zoo serve`: the same settings, for a developer's machine: new exports are picked up without a restart."""

    # A development server polls the repository, allows shared memory and has no token: it listens on this machine
    # only (IPv4 and IPv6 loopback) unless --host says otherwise.
    host: str = Field("localhost", description="address to bind (localhost: loopback over IPv4 and IPv6; 0.0.0.0: every address)")
    model_control_mode: ModelControl = Field("poll", description=ServerSettings.model_fields["model_control_mode"].description)
    allow_shared_memory: bool = Field(True, description=ServerSettings.model_fields["allow_shared_memory"].description)


def flag_name(field: str) -> str:
    """The command-line flag of a settings field."""
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return ENV_PREFIX + field.upper()


def load(cls: type[ServerSettings] = ServerSettings, flags: dict[str, Any] | None = None) -> ServerSettings:
    """Settings from explicit flags over ZOO_* variables over defaults; SettingsError names the flag or variable."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    # A typo in a deployment's variable would otherwise be ignored silently: refuse to start and name it.
    unknown = unknown_variables(os.environ, (env_name(f) for f in ServerSettings.model_fields))
    if unknown:
        raise SettingsError("; ".join(unknown) + " (every server variable is a flag's name: see --help)")
    try:
        return cls(**flags)
    except ValidationError as e:
        raise SettingsError(describe(e, set(flags))) from None


def describe(error: ValidationError, from_flags: set[str]) -> str:
    """One line per invalid value, naming where it came from (`--port` or `ZOO_PORT`) and what is expected."""
    lines = []
    for err in error.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        if field in ServerSettings.model_fields:
            where = flag_name(field) if field in from_flags else env_name(field)
            lines.append(f"{where}={err.get('input')!r}: {err['msg']}")
        else:
            lines.append(err["msg"].removeprefix("Value error, "))
    return "; ".join(lines)
