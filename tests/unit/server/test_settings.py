"""Settings come from flags, then ZOO_* variables, then defaults; nothing is read at import."""

from __future__ import annotations

import pytest

from zoo.server.app import parse_settings
from zoo.server.settings import ServerSettings, env_defaults


def test_flags_override_env_which_overrides_defaults():
    env = {"ZOO_PORT": "9001", "ZOO_MAX_BATCH_SIZE": "64", "ZOO_REQUIRE_GPU": "true", "ZOO_REPOSITORY": "/env"}
    s = parse_settings(["--port", "0", "--repository", "/flag"], env)
    assert (s.port, s.max_batch_size, s.require_gpu, s.repository) == (0, 64, True, "/flag")
    assert parse_settings([], {}) == ServerSettings()


def test_bad_env_value_names_the_variable():
    with pytest.raises(ValueError, match="ZOO_PORT"):
        env_defaults({"ZOO_PORT": "eighty"})


def test_validate_rejects_nonsense():
    with pytest.raises(ValueError, match="max_batch_size"):
        ServerSettings(max_batch_size=0).validate()
    assert ServerSettings(max_queue_rows=0, max_batch_size=8).queue_rows == 512


def test_event_loop_choice():
    import asyncio

    import pytest

    from zoo.server.app import loop_factory
    from zoo.server.settings import ServerSettings

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
    with pytest.raises(ValueError, match="event_loop"):
        ServerSettings(event_loop="trio").validate()
