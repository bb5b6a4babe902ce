"""One settings object for both server commands: flags > ZOO_* variables > defaults, every error naming its source."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from zoo.server.cli import dev_command, server_command
from zoo.server.settings import DevServerSettings, ServerSettings, SettingsError, load


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("ZOO_"):
            monkeypatch.delenv(key)


def test_flags_override_env_which_overrides_defaults(monkeypatch):
    for k, v in {"ZOO_PORT": "9001", "ZOO_MAX_BATCH_SIZE": "64", "ZOO_REQUIRE_GPU": "true", "ZOO_REPOSITORY": "/env"}.items():
        monkeypatch.setenv(k, v)
    s = load(ServerSettings, {"port": 0, "repository": "/flag"})
    assert (s.port, s.max_batch_size, s.require_gpu, s.repository) == (0, 64, True, "/flag")
    monkeypatch.delenv("ZOO_PORT")
    assert load(ServerSettings, {}).port == 8001


@pytest.mark.parametrize(
    "var, value",
    [
        ("ZOO_REQUIRE_GPU", "ture"),
        ("ZOO_PORT", "eighty"),
        ("ZOO_MODEL_CONTROL_MODE", "auto"),
        ("ZOO_INTRA_OP_THREADS", "-1"),
        ("ZOO_POLL_INTERVAL", "0"),
    ],
)
def test_an_invalid_variable_is_an_error_naming_it(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=f"^{var}='{value}': "):
        load(ServerSettings, {})


def test_an_invalid_flag_is_an_error_naming_the_flag(monkeypatch):
    monkeypatch.setenv("ZOO_PORT", "70000")  # the flag's value is the one reported, not the variable's
    with pytest.raises(SettingsError, match=r"^--port=70000: .*less than or equal to 65535"):
        load(ServerSettings, {"port": 70000})


def test_settings_that_only_make_sense_together():
    with pytest.raises(SettingsError, match="TLS needs both --tls-cert and --tls-key"):
        load(ServerSettings, {"tls_cert": "cert.pem"})
    with pytest.raises(SettingsError, match="mTLS"):
        load(ServerSettings, {"tls_client_ca": "ca.pem"})
    assert load(ServerSettings, {"max_queue_rows": 0, "max_batch_size": 8}).queue_rows == 512


def test_both_commands_have_the_same_options_and_show_every_default():
    names = lambda cmd: sorted(p.name for p in cmd.params)  # noqa: E731
    assert names(server_command) == names(dev_command)
    assert "auth_token" not in names(server_command)  # a secret never goes on a command line
    for cmd in (server_command, dev_command):
        out = CliRunner().invoke(cmd, ["--help"], terminal_width=200).output
        for p in cmd.params:
            if p.name == "help":
                continue
            flag = p.opts[0]
            line = out[out.index(flag) :]
            assert "[default: " in line.split("\n  --")[0], f"{cmd.name} {flag} does not show its default"


def test_zoo_serve_polls_by_default_and_zoo_server_does_not():
    assert load(ServerSettings, {}).model_control_mode == "none"
    assert load(DevServerSettings, {}).model_control_mode == "poll"
    assert load(DevServerSettings, {"model_control_mode": "explicit"}).model_control_mode == "explicit"


def test_a_bad_flag_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(server_command, ["--intra-op-threads", "-3", "--repository", str(tmp_path)])
    assert result.exit_code == 2
    assert "--intra-op-threads=-3" in result.output and "Traceback" not in result.output


def test_token_from_a_file_or_the_environment(tmp_path, monkeypatch):
    f = tmp_path / "token"
    f.write_text("s3cret\n")
    assert load(ServerSettings, {"auth_token_file": str(f)}).token() == "s3cret"
    f.write_text("")
    with pytest.raises(SettingsError, match="is empty"):
        load(ServerSettings, {"auth_token_file": str(f)}).token()
    monkeypatch.setenv("ZOO_AUTH_TOKEN", "from-env")
    assert load(ServerSettings, {}).token() == "from-env"
    with pytest.raises(SettingsError, match="not both"):
        load(ServerSettings, {"auth_token_file": str(f)})
    assert "from-env" not in repr(load(ServerSettings, {}))


def test_event_loop_choice():
    from zoo.server.app import loop_factory

    assert loop_factory("asyncio") is None
    factory = loop_factory("auto")
    try:
        import uvloop
    except ImportError:
        assert factory is None
    else:
        loop = factory()
        assert isinstance(loop, uvloop.Loop) and isinstance(loop, asyncio.AbstractEventLoop)
        loop.close()
    with pytest.raises(SettingsError, match="event_loop|--event-loop"):
        load(ServerSettings, {"event_loop": "trio"})


def test_an_unknown_variable_refuses_to_start_naming_the_closest_real_one(monkeypatch):
    monkeypatch.setenv("ZOO_POLL_INTERVAL_S", "30")  # the name an old deployment guide gave
    with pytest.raises(SettingsError, match=r"unknown variable ZOO_POLL_INTERVAL_S \(did you mean ZOO_POLL_INTERVAL\?\)"):
        load(ServerSettings, {})
    monkeypatch.setenv("ZOO_WHATEVER_THING", "1")
    with pytest.raises(SettingsError, match="unknown variable ZOO_WHATEVER_THING"):
        load(ServerSettings, {})


def test_an_unknown_variable_stops_the_command_with_exit_code_2(monkeypatch):
    monkeypatch.setenv("ZOO_MAX_BATCHSIZE", "64")
    result = CliRunner().invoke(server_command, ["--port", "0"])
    assert result.exit_code == 2
    assert "unknown variable ZOO_MAX_BATCHSIZE (did you mean ZOO_MAX_BATCH_SIZE?)" in result.output


def test_variables_read_elsewhere_are_not_unknown(monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", "/tmp/cache")
    monkeypatch.setenv("ZOO_AUTH_TOKEN_FILE", "/tmp/token")
    assert load(ServerSettings, {}).port == 8001


def test_every_variable_the_docs_name_is_one_the_code_reads():
    import re
    from pathlib import Path

    from zoo.core.environment import OTHER_VARIABLES
    from zoo.server.settings import env_name

    root = Path(__file__).resolve().parents[3]
    docs = [root / "README.md", root / "Dockerfile", *sorted((root / "deploy").rglob("*")), *sorted((root / "tests").rglob("*.py"))]
    known = {env_name(f) for f in ServerSettings.model_fields} | set(OTHER_VARIABLES)
    named = {}
    for path in docs:
        if path.is_file() and path.suffix != ".pyc" and path != Path(__file__).resolve():  # this file names typos on purpose
            for var in re.findall(r"\bZOO_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8", errors="replace")):
                named.setdefault(var, path.relative_to(root))
    named.pop("ZOO_POOL", None)  # a Python name in the generated stubs' helper, not a variable
    unknown = {var: str(where) for var, where in named.items() if var not in known}
    assert not unknown, f"the docs name variables nothing reads: {unknown}"
    assert "ZOO_POLL_INTERVAL" in named  # the check reads the deployment guide
