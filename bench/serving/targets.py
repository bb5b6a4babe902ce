"""Server control: start and stop zoo-server (now and before), the grpc.aio floor and Triton; read their real ports back."""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
OUT = BENCH / "out"
BEFORE_COMMIT = "a6a32c3"  # the server before the restructuring (0f58d15) and the new batcher
TRITON_ANCHOR = os.environ.get("TRITON_ANCHOR", "/work/shared/tools/triton-anchor")
PYTHON = sys.executable
ZOO_SERVER = str(Path(PYTHON).with_name("zoo-server"))
# "zoo-server listening on HOST:PORT (metrics port M, HTTP port H, ...)"; the before server logs no HTTP port, and a
# worker's own line ("zoo-server worker 0 listening on") must not match: with --workers only the supervisor's counts.
ZOO_LINE = re.compile(r"zoo-server listening on (?P<host>\S+):(?P<port>\d+)(?: \(metrics port \w+(?:, HTTP port (?P<http>\w+))?)?")
FLOOR_LINE = re.compile(r"listening on (?P<host>\S+):(?P<port>\d+)")
START_S = 120.0
TRITON_START_S = 600.0  # the first triton-anchor call installs Triton into its cache (about a minute, more on a busy box)


class StartFailed(RuntimeError):
    """A target that did not come up; its message is the reason shown in the tables."""


@dataclass(eq=False)  # identity hash: targets live in a set
class Target:
    """A running server: its process group, ports and the tail of its log."""

    name: str
    proc: subprocess.Popen
    port: int
    http_port: int | None = None
    log: deque = field(default_factory=lambda: deque(maxlen=300))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_address(self) -> str | None:
        return f"127.0.0.1:{self.http_port}" if self.http_port else None

    def pids(self) -> list[int]:
        """The whole process tree: workers under a supervisor, Triton's python backend stub."""
        return descendants(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 30 s; safe to call twice."""
        _LIVE.discard(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass


_LIVE: set[Target] = set()  # every started target, so stop_all() can end them on any exit path


def stop_all() -> None:
    """Stop every target still running (called from the driver's finally and atexit)."""
    for t in list(_LIVE):
        t.stop()


def descendants(pid: int) -> list[int]:
    """pid and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _env(**extra: str) -> dict[str, str]:
    """The driver's environment without ZOO_* settings (they would silently change the servers' flags)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env.update(extra)
    return env


def _launch(name: str, cmd: list[str], line: re.Pattern, *, env=None, cwd=None, timeout: float = START_S) -> Target:
    """Start cmd in its own process group; return once its log shows `line` (the port it really bound)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env or _env(),
                            cwd=cwd, start_new_session=True)
    log: deque = deque(maxlen=300)
    found: dict = {}
    seen = threading.Event()

    def drain() -> None:  # always drained: a full pipe would stall the server mid-benchmark
        for text in proc.stdout or ():
            log.append(text.rstrip("\n"))
            m = None if found else line.search(text)
            if m:
                found.update(m.groupdict())
                seen.set()
        seen.set()

    threading.Thread(target=drain, daemon=True).start()
    target = Target(name, proc, 0, log=log)
    _LIVE.add(target)
    if not seen.wait(timeout) or not found:
        target.stop()
        raise StartFailed(_reason(log, proc, f"no 'listening on' line after {timeout:.0f} s"))
    target.port = int(found["port"])
    http = found.get("http")
    target.http_port = int(http) if http and http.isdigit() else None
    return target


def _reason(log, proc: subprocess.Popen, fallback: str) -> str:
    """The line that says why it failed (its "failed to start" line, else the last error-looking one), with the exit code."""
    lines = [line for line in log if line.strip()]
    bad = [line for line in lines if re.search(r"error|fail|refus|cannot|Traceback|Exception", line, re.I)]
    first = [line for line in bad if "failed to start" in line]  # the cause, not the supervisor's "giving up" after it
    pick = (first or bad or lines[-1:] or [""])[-1].strip()
    code = proc.poll()
    tail = f" (exit {code})" if code is not None else ""
    return (pick[:200] or fallback) + tail


def start_zoo(repository: Path, *, name: str = "zoo", workers: int = 1, max_batch: int = 1024, threads: int = 1,
              delay_us: int | None = None, http: bool = True, extra: tuple[str, ...] = ()) -> Target:
    """zoo-server on port 0 (gRPC, and HTTP unless told not to), metrics off, system shared memory allowed."""
    cmd = [ZOO_SERVER, "--repository", str(repository), "--host", "127.0.0.1", "--port", "0", "--http-port", "0" if http else "-1",
           "--metrics-port", "-1", "--max-batch-size", str(max_batch), "--intra-op-threads", str(threads),
           "--workers", str(workers), "--allow-shared-memory"]
    if delay_us is not None:
        cmd += ["--max-queue-delay-us", str(delay_us)]
    cmd += list(extra)
    return _launch(name, cmd, ZOO_LINE, timeout=START_S * max(1, workers))


def start_floor() -> Target:
    """The bare grpc.aio server answering a cached response: what any Python grpc.aio server pays per request."""
    return _launch("floor", [PYTHON, str(BENCH / "_grpc_floor.py"), "--port", "0"], FLOOR_LINE)


def build_before(commit: str = BEFORE_COMMIT, root: Path = OUT / "base") -> Path:
    """A package tree of the zoo server at `commit` (zoo/, zoo/server, zoo/client) with stubs for our protobuf."""
    tree = root / "tree"
    stamp = tree / ".built-from"
    if stamp.exists() and stamp.read_text().strip() == commit:
        return tree
    shutil.rmtree(root, ignore_errors=True)
    src = root / "src"
    src.mkdir(parents=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, timeout=120, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(src, filter="data")
    # The installed layout: server/ and client/ live inside the zoo package (pyproject's package-dir at that commit).
    shutil.copytree(src / "zoo", tree / "zoo")
    shutil.copytree(src / "server", tree / "zoo" / "server")
    shutil.copytree(src / "client", tree / "zoo" / "client")
    # Its committed stubs are protobuf-7 gencode, which our protobuf 6 runtime refuses: regenerate from its own protos.
    for old in (tree / "zoo" / "proto").glob("*_pb2*.py*"):
        old.unlink()
    protos = src / "protos"
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    sources = sorted(str(p) for p in (protos / "zoo" / "proto").glob("*.proto"))
    rc = protoc.main(["protoc", f"-I{protos}", f"-I{include}", f"--python_out={tree}", f"--grpc_python_out={tree}", *sources])
    if rc != 0:
        raise StartFailed(f"protoc failed on {commit}'s protos (exit {rc})")
    check = subprocess.run([PYTHON, "-c", "import zoo.server.app, zoo.proto.grpc_service_pb2 as p; print(zoo.server.app.__file__)"],
                           cwd=tree, env=_env(PYTHONPATH=str(tree)), capture_output=True, text=True, timeout=60)
    if check.returncode != 0 or not check.stdout.strip().startswith(str(tree)):
        raise StartFailed(f"the {commit} tree does not import on its own: {(check.stderr or check.stdout).strip()[-200:]}")
    stamp.write_text(commit)
    return tree


def start_before(repository: Path, *, max_batch: int = 1024, threads: int = 1, delay_us: int = 200,
                 commit: str = BEFORE_COMMIT) -> Target:
    """The zoo server as it was at `commit`: `python -m zoo.server` from the assembled tree (gRPC only)."""
    try:
        tree = build_before(commit)
    except (subprocess.SubprocessError, OSError) as e:
        raise StartFailed(f"cannot build the {commit} tree: {e}") from None
    cmd = [PYTHON, "-m", "zoo.server", "--repository", str(repository.resolve()), "--host", "127.0.0.1", "--port", "0",
           "--metrics-port", "-1", "--max-batch-size", str(max_batch), "--max-queue-delay-us", str(delay_us),
           "--intra-op-threads", str(threads)]
    # cwd is the tree, so `python -m` puts the old zoo first on sys.path, ahead of the checkout and the editable install.
    return _launch("before", cmd, ZOO_LINE, env=_env(PYTHONPATH=str(tree)), cwd=tree)


def _free_triple() -> int:
    """A port P with P-1, P and P+1 free right now, below the kernel's ephemeral range (triton-anchor needs all three)."""
    # Below the ephemeral range no client socket (ours or anyone's) can be handed one of them between the check and
    # Triton's bind; another explicit binder still can, hence the retry in start_triton.
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        p = rng.randrange(max(2000, low - 12000), low - 2)
        try:
            for q in (p - 1, p, p + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", q))
        except OSError:
            continue
        return p
    raise StartFailed("no three adjacent free ports")


TRITON_UP = ("Started GRPCInferenceService", "Started HTTPService", "Started Metrics Service")


def start_triton(onnx: Path, model: str, *, delay_us: int = 200, max_batch: int = 1024, attempts: int = 4) -> Target:
    """triton-anchor (Triton 2.51, python backend running onnxruntime on 1 thread) serving one model."""
    # triton-anchor cannot bind port 0 (it derives HTTP and metrics ports from the gRPC one), so here, and only here,
    # a free port is picked beforehand; another process may take it in between, so a bind failure is retried.
    last = "not started"
    for _ in range(attempts):
        port = _free_triple()
        cmd = [TRITON_ANCHOR, str(onnx), model, str(port), str(delay_us), str(max_batch)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                                start_new_session=True)
        target = Target(f"triton-{model}", proc, port, http_port=port - 1)
        _LIVE.add(target)
        threading.Thread(target=_keep_log, args=(target,), daemon=True).start()
        try:
            # gRPC comes up before HTTP and metrics, and Triton exits if either of those cannot bind: wait for all three.
            deadline = time.monotonic() + TRITON_START_S
            while not all(any(w in line for line in list(target.log)) for w in TRITON_UP):
                if not target.alive() or time.monotonic() > deadline:
                    raise StartFailed(_reason(target.log, target.proc, "its services did not start"))
                time.sleep(0.2)
            wait_ready(target, model, max(10.0, deadline - time.monotonic()))
            return target
        except StartFailed as e:
            target.stop()
            last = str(e)
            if not any(re.search(r"already in use|address in use|bind", line, re.I) for line in target.log):
                break
    raise StartFailed(last)


def _keep_log(target: Target) -> None:
    for line in target.proc.stdout or ():  # always drained: a full pipe would stall the server mid-benchmark
        target.log.append(line.rstrip("\n"))


def wait_ready(target: Target, model: str, timeout: float) -> None:
    """Poll ServerReady and ModelReady over gRPC until both say ready."""
    import grpc

    from zoo.proto import grpc_service_pb2 as pb
    from zoo.proto import grpc_service_pb2_grpc as pb_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target.address) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        while time.monotonic() < deadline:
            if not target.alive():
                raise StartFailed(_reason(target.log, target.proc, "exited"))
            try:
                if stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready and \
                        stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=2).ready:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise StartFailed(f"{model} not ready after {timeout:.0f} s: " + _reason(target.log, target.proc, "no log"))
