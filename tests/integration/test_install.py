"""A non-editable `pip install .` puts server/ and client/ inside the zoo package, never at the top level."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_layout_and_imports(tmp_path):
    # Build from a copy of the sources: a build must not depend on (or litter) the working tree.
    src = tmp_path / "src"
    subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True)
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files"], check=True, capture_output=True, text=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            (src / f).write_bytes((ROOT / f).read_bytes())
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)], check=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("zoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"zoo", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    for must in ("zoo/server/app.py", "zoo/client/__init__.py", "zoo/proto/grpc_service_pb2.py", "zoo/cli/__init__.py"):
        assert must in names, must
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300)
    assert not (site / "server").exists() and not (site / "client").exists()
    probe = (
        "import sys, importlib.util; sys.path.insert(0, sys.argv[1]);"
        "import zoo.server.app, zoo.client, zoo.proto.grpc_service_pb2 as pb;"
        "assert zoo.server.app.__file__.startswith(sys.argv[1]), zoo.server.app.__file__;"
        "assert zoo.client.__file__.startswith(sys.argv[1]);"
        "assert importlib.util.find_spec('server') is None and importlib.util.find_spec('client') is None;"
        "assert 'torch' not in sys.modules, 'the server must not import torch';"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(site)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
