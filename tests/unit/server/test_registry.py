"""The Registry over a real repository in tmp_path (copies of real exports, real onnxruntime sessions): what each
model control mode loads, lookups by version string, the NOT_FOUND messages, and poll_once following the disk.
Requests in flight are held by gates, never by sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from tests.integration.server.server_helpers import copy_version, rows_for

from zoo.core import repository
from zoo.core.repository import METADATA_FILE, MODEL_FILE
from zoo.server.errors import ControlDisabled, InvalidInput, ModelNotFound, ModelNotReady
from zoo.server.metrics import Metrics
from zoo.server.registry import Registry
from zoo.server.settings import ServerSettings

from tests.unit.server.batcher_calls import submit

HANG_GUARD_S = 60  # only ever reached if something hangs: a failure, not a timing assumption
IMPOSSIBLE_NAMES = ["../x", "/etc", ".hidden", "a" * 129]


@pytest.fixture(autouse=True)
def no_zoo_env(monkeypatch):
    """Settings come from the test alone, not from ZOO_* variables of the shell."""
    for key in list(os.environ):
        if key.startswith("ZOO_"):
            monkeypatch.delenv(key)


@pytest.fixture
def repo(exported_repo, tmp_path) -> Path:
    """A repository in tmp_path: iris v1 and v2, breast-cancer v1, copied from the real exports."""
    root = tmp_path / "models"
    for name, version in [("iris", 1), ("iris", 2), ("breast-cancer", 1)]:
        copy_version(exported_repo, name, version, root, name, version)
    return root


def make_registry(root: Path, on_change=None, **settings) -> Registry:
    """A Registry over `root` with its own Metrics (drains may take as long as the hang guard)."""
    values = dict(repository=str(root), grace=HANG_GUARD_S)
    values.update(settings)
    return Registry(ServerSettings(**values), Metrics(), on_change=on_change)


@contextlib.asynccontextmanager
async def started(root: Path, on_change=None, **settings):
    """A started Registry, closed (drained) on the way out."""
    reg = make_registry(root, on_change, **settings)
    await reg.start()
    try:
        yield reg
    finally:
        await reg.close()


def run(coro):
    """Run a test's coroutine on a fresh loop, failing instead of hanging."""
    return asyncio.run(asyncio.wait_for(coro, HANG_GUARD_S * 2))


def sha(repo: Path, name: str, version: int) -> str:
    """The model_sha256 recorded in a version's metadata.json."""
    return repository.read_card(repo, name, version).model_sha256


def provider_gauge(reg: Registry, model: str, version: int, provider: str) -> float | None:
    """The zoo_model_provider sample of one version (None when absent)."""
    labels = {"model": model, "version": str(version), "provider": provider}
    return reg.metrics.registry.get_sample_value("zoo_model_provider", labels)


def index_rows(rows: list, model: str) -> dict:
    """The index() rows of one model, keyed by version string."""
    return {v: (state, reason) for name, v, state, reason in rows if name == model}


class GatedPredict:
    """Wraps a batcher's predict: says when a batch entered it, then holds the batch until the gate opens."""

    def __init__(self, predict):
        self.predict = predict
        self.entered = threading.Event()
        self.gate = threading.Event()

    def __call__(self, x):
        self.entered.set()
        assert self.gate.wait(HANG_GUARD_S), "the test never opened the gate"
        return self.predict(x)


async def wait_event(event: threading.Event) -> None:
    """Wait for a threading.Event without blocking the loop; fail instead of hanging."""
    assert await asyncio.to_thread(event.wait, HANG_GUARD_S), "event never set"


def threaded_rows(exported_repo: Path) -> np.ndarray:
    """A few iris rows for a gated batch (the test sets inline_rows = 0 so it runs on the model's thread)."""
    return rows_for(exported_repo, "iris", 8)


# start, per model control mode


@pytest.mark.parametrize("mode", ["none", "poll"])
def test_none_and_poll_modes_load_every_model_at_start(repo, mode):
    async def main():
        async with started(repo, model_control_mode=mode) as reg:
            assert reg.names() == ["breast-cancer", "iris"]
            assert (reg.get("iris").version, reg.get("breast-cancer").version) == (2, 1)
            assert sorted(await reg.index()) == [("breast-cancer", "1", "READY", ""), ("iris", "1", "READY", ""),
                                                 ("iris", "2", "READY", "")]
            lv = reg.get("iris")
            assert provider_gauge(reg, "iris", 2, lv.provider) == 1.0

    run(main())


def test_explicit_mode_loads_only_the_models_named_at_start(repo):
    async def main():
        async with started(repo, model_control_mode="explicit", load_model=["iris"]) as reg:
            assert reg.names() == ["iris"]
            assert ("breast-cancer", "", "UNAVAILABLE", "not loaded") in await reg.index()

    run(main())


@pytest.mark.parametrize("load_model, names", [(["*"], ["breast-cancer", "iris"]), ([], [])])
def test_explicit_mode_loads_all_for_star_and_nothing_by_default(repo, load_model, names):
    async def main():
        async with started(repo, model_control_mode="explicit", load_model=load_model) as reg:
            assert reg.names() == names

    run(main())


# lookups


def test_get_without_a_version_is_the_highest_loaded_and_a_canonical_number_names_one(repo, exported_repo):
    async def main():
        async with started(repo) as reg:
            assert reg.get("iris").version == 2 and reg.get("iris", "") is reg.get("iris")
            assert reg.get("iris", "1").version == 1 and reg.get("iris", "2").version == 2
            assert reg.get("iris", "1").card.model_sha256 == sha(exported_repo, "iris", 1)

    run(main())


@pytest.mark.parametrize("version", ["01", "+1", " 1", "1 ", "1.0", "0", "-1", "v1", "\u0661", "3"])
def test_a_version_string_that_is_not_a_loaded_canonical_decimal_is_not_found(repo, version):
    async def main():
        async with started(repo) as reg:
            with pytest.raises(ModelNotFound, match=r"unknown version .* of model 'iris'; versions: 1, 2"):
                reg.get("iris", version)

    run(main())


def test_impossible_names_are_invalid_input_even_where_a_model_folder_exists(repo, exported_repo, tmp_path):
    # Each name would reach a real model (or a real folder) if it were ever joined to a path.
    copy_version(exported_repo, "iris", 1, tmp_path, "x", 1)  # models/../x
    for name in [".hidden", "a" * 129]:  # folders the exporter could not have made: copied by hand
        shutil.copytree(exported_repo / "iris", repo / name)

    async def main():
        async with started(repo, model_control_mode="explicit", load_model=["*"]) as reg:
            for name in IMPOSSIBLE_NAMES:
                with pytest.raises(InvalidInput, match="invalid model name"):
                    reg.get(name)
                with pytest.raises(InvalidInput, match="invalid model name"):
                    await reg.load(name)
                with pytest.raises(InvalidInput, match="invalid model name"):
                    await reg.unload(name)
            assert reg.names() == ["breast-cancer", "iris"]
            assert {row[0] for row in await reg.index()} == {"breast-cancer", "iris"}

    run(main())


def test_an_unknown_model_is_not_found_listing_the_known_models(repo):
    async def main():
        async with started(repo) as reg:
            with pytest.raises(ModelNotFound, match="unknown model 'nope'; models: breast-cancer, iris$"):
                reg.get("nope")

    run(main())


@pytest.mark.parametrize("mode, how", [
    ("explicit", "load it with RepositoryModelLoad"),
    ("poll", "it will be loaded at the next repository poll"),
    ("none", r"the server loads the repository only at start \(--model-control-mode none\): restart it, "
             "or run it with --model-control-mode poll or explicit"),
])
def test_a_model_on_disk_but_not_loaded_is_not_found_saying_how_to_load_it(repo, exported_repo, mode, how):
    async def main():
        async with started(repo, model_control_mode=mode, load_model=["*"]) as reg:
            copy_version(exported_repo, "iris", 1, repo, "late", 1)
            await reg.index()  # the index looks at the disk: the server now knows the folder
            with pytest.raises(ModelNotFound, match=f"model 'late' is in the repository but not loaded: {how}"):
                reg.get("late")

    run(main())


# load and unload


@pytest.mark.parametrize("mode", ["none", "poll"])
def test_load_and_unload_are_refused_outside_explicit_mode(repo, mode):
    async def main():
        async with started(repo, model_control_mode=mode) as reg:
            with pytest.raises(ControlDisabled, match=f"cannot load models: the server runs with --model-control-mode {mode}"):
                await reg.load("iris")
            with pytest.raises(ControlDisabled, match=f"cannot unload models: .* --model-control-mode {mode}"):
                await reg.unload("iris")
            assert reg.get("iris").version == 2  # nothing changed

    run(main())


def test_explicit_mode_loads_and_unloads_by_request(repo):
    async def main():
        async with started(repo, model_control_mode="explicit", load_model=["iris"]) as reg:
            entry = await reg.load("breast-cancer")
            assert sorted(entry.loaded) == [1] and reg.get("breast-cancer").version == 1
            await reg.unload("iris")
            with pytest.raises(ModelNotReady, match="'iris' is unloaded"):
                reg.get("iris")
            assert ("iris", "", "UNAVAILABLE", "unloaded") in await reg.index()
            with pytest.raises(ModelNotFound, match="no model 'ghost' in the repository"):
                await reg.load("ghost")

    run(main())


def test_explicit_load_of_a_model_whose_folder_was_deleted_is_not_found(repo):
    async def main():
        async with started(repo, model_control_mode="explicit", load_model=["iris"]) as reg:
            shutil.rmtree(repo / "iris")
            with pytest.raises(ModelNotFound):
                await reg.load("iris")
            assert reg.names() == []  # what actually happened: the model is gone

    run(main())


# poll_once


def test_poll_loads_a_new_version_which_becomes_the_default(repo, exported_repo):
    shutil.rmtree(repo / "iris" / "2")

    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            assert reg.get("iris").version == 1
            copy_version(exported_repo, "iris", 2, repo, "iris", 2)
            await reg.poll_once()
            assert reg.get("iris").version == 2 and reg.get("iris").card.model_sha256 == sha(exported_repo, "iris", 2)
            assert reg.get("iris", "1").version == 1  # the old one still answers by number

    run(main())


def test_poll_retires_a_deleted_version_after_draining_its_request_in_flight(repo, exported_repo):
    x = threaded_rows(exported_repo)

    async def main():
        async with started(repo, model_control_mode="poll", max_batch_size=len(x)) as reg:
            v2 = reg.get("iris", "2")
            gated = v2.batcher.predict = GatedPredict(v2.batcher.predict)
            v2.batcher.inline_rows = 0  # on the model's thread: the gate must not hold the loop
            in_flight = asyncio.create_task(submit(v2.batcher, x))
            await wait_event(gated.entered)
            shutil.rmtree(repo / "iris" / "2")
            await reg.poll_once()
            assert reg.get("iris").version == 1
            with pytest.raises(ModelNotFound, match="unknown version '2' of model 'iris'; versions: 1$"):
                reg.get("iris", "2")
            assert provider_gauge(reg, "iris", 2, v2.provider) is None
            assert not in_flight.done()  # held by the gate: retiring waits for it
            gated.gate.set()
            out = await in_flight
            np.testing.assert_array_equal(out["probabilities"], v2.model.predict(x)["probabilities"])
            with pytest.raises(ModelNotReady, match="shutting down"):
                await submit(v2.batcher, x[:1])  # drained and closed

    run(main())


def test_poll_forgets_a_deleted_model_folder(repo):
    changes: list[tuple[str, bool]] = []

    async def main():
        async with started(repo, on_change=lambda name, ready: changes.append((name, ready)),
                           model_control_mode="poll") as reg:
            bc = reg.get("breast-cancer")
            shutil.rmtree(repo / "breast-cancer")
            await reg.poll_once()
            assert reg.names() == ["iris"]
            with pytest.raises(ModelNotFound, match="unknown model 'breast-cancer'; models: iris$"):
                reg.get("breast-cancer")
            assert provider_gauge(reg, "breast-cancer", 1, bc.provider) is None
            assert all(row[0] == "iris" for row in await reg.index())

    run(main())
    assert changes[-1] == ("breast-cancer", False)


def test_a_corrupt_version_fails_with_its_reason_and_loads_at_the_next_poll_once_repaired(repo, exported_repo):
    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            model = copy_version(exported_repo, "iris", 2, repo, "iris", 3) / MODEL_FILE
            good = model.read_bytes()
            model.write_bytes(good[:-16])  # a truncated copy: its SHA-256 no longer matches metadata.json
            await reg.poll_once()
            state, reason = index_rows(await reg.index(), "iris")["3"]
            assert state == "UNAVAILABLE" and "is corrupt: SHA-256" in reason
            assert reg.get("iris").version == 2  # the default stays on what loaded
            with pytest.raises(ModelNotReady, match="version 3 is not ready: .*is corrupt"):
                reg.get("iris", "3")
            model.write_bytes(good)  # repaired in place: same metadata, the original bytes
            await reg.poll_once()
            assert reg.get("iris").version == 3
            assert index_rows(await reg.index(), "iris")["3"] == ("READY", "")

    run(main())


def test_a_serving_version_whose_model_file_is_overwritten_keeps_serving_and_says_why(repo, exported_repo):
    x = rows_for(exported_repo, "iris", 16)

    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            v1 = reg.get("iris", "1")
            before = await submit(v1.batcher, x)
            model = repo / "iris" / "1" / MODEL_FILE
            original = model.read_bytes()
            model.write_bytes(b"other bytes")
            await reg.poll_once()
            assert reg.get("iris", "1") is v1
            np.testing.assert_array_equal((await submit(v1.batcher, x))["probabilities"], before["probabilities"])
            state, reason = index_rows(await reg.index(), "iris")["1"]
            assert state == "READY"
            assert reason.startswith("files changed on disk since loading, and the new ones do not load")
            assert "corrupt" in reason and reason.endswith("serving the loaded copy")
            model.write_bytes(original)  # put back: the reason goes, the same session serves on
            await reg.poll_once()
            assert reg.get("iris", "1") is v1
            assert index_rows(await reg.index(), "iris")["1"] == ("READY", "")

    run(main())


def test_a_version_replaced_by_another_export_swaps_in_and_keeps_its_provider_gauge(repo, exported_repo):
    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            old = reg.get("iris", "1")
            folder = repo / "iris" / "1"
            src = repository.version_dir(exported_repo, "iris", 2)
            meta = json.loads((src / METADATA_FILE).read_text())
            for fname, data in [(METADATA_FILE, json.dumps({**meta, "version": 1}).encode()),
                                (MODEL_FILE, (src / MODEL_FILE).read_bytes())]:
                tmp = folder / f".{fname}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, folder / fname)
            await reg.poll_once()
            new = reg.get("iris", "1")
            assert new is not old and new.card.model_sha256 == meta["model_sha256"]
            assert provider_gauge(reg, "iris", 1, new.provider) == 1.0

    run(main())


def test_a_version_without_selfcheck_rows_is_refused(repo):
    folder = repo / "iris" / "2"
    meta = json.loads((folder / METADATA_FILE).read_text())
    del meta["selfcheck"]
    (folder / METADATA_FILE).write_text(json.dumps(meta))

    async def main():
        async with started(repo) as reg:
            state, reason = index_rows(await reg.index(), "iris")["2"]
            assert state == "UNAVAILABLE" and "self-check" in reason
            assert reg.get("iris").version == 1  # served: the highest version that passed its self-check
            with pytest.raises(ModelNotReady, match="version 2 is not ready: .*self-check"):
                reg.get("iris", "2")

    run(main())


@pytest.mark.parametrize("allowed", [False, True])
def test_a_model_folder_symlinked_outside_the_repository_is_served_only_when_allowed(repo, exported_repo, tmp_path, allowed):
    outside = tmp_path / "outside"
    copy_version(exported_repo, "iris", 1, outside, "ext", 1)
    (repo / "ext").symlink_to(outside / "ext", target_is_directory=True)

    async def main():
        async with started(repo, allow_external_symlinks=allowed) as reg:
            if allowed:
                assert reg.get("ext").version == 1
                return
            with pytest.raises(ModelNotReady, match="'ext' is not ready"):
                reg.get("ext")
            reasons = [reason for name, _, state, reason in await reg.index() if name == "ext"]
            assert reasons and "resolves outside the repository" in reasons[0]
            assert reg.get("iris").version == 2  # the others serve regardless

    run(main())


def test_close_drains_running_and_queued_requests_then_refuses_new_ones(repo, exported_repo):
    x = threaded_rows(exported_repo)
    small = x[:3]

    async def main():
        reg = make_registry(repo, max_batch_size=len(x))
        await reg.start()
        lv = reg.get("iris")
        gated = lv.batcher.predict = GatedPredict(lv.batcher.predict)
        lv.batcher.inline_rows = 0  # on the model's thread: the gate must not hold the loop
        running = asyncio.create_task(submit(lv.batcher, x))
        await wait_event(gated.entered)
        queued = asyncio.create_task(submit(lv.batcher, small))
        await asyncio.sleep(0)  # lets the second request reach the queue
        assert lv.batcher.queued_rows == len(small)
        closing = asyncio.create_task(reg.close())
        await asyncio.sleep(0)
        assert not closing.done() and not running.done()  # held by the gate: close waits
        gated.gate.set()
        await closing
        np.testing.assert_array_equal((await running)["label"], lv.model.predict(x)["label"])
        np.testing.assert_array_equal((await queued)["label"], lv.model.predict(small)["label"])
        with pytest.raises(ModelNotReady, match="shutting down"):
            await submit(lv.batcher, small)
        assert provider_gauge(reg, "iris", 2, lv.provider) is None

    run(main())


# metadata.json is part of a version's identity


def edit_card(folder: Path, **changes) -> None:
    """Rewrite a version's metadata.json with `changes`, atomically as an editor's save-and-rename does."""
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta.update(changes)
    tmp = folder / f".{METADATA_FILE}.tmp"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / METADATA_FILE)


def test_poll_swaps_in_edited_class_names_while_a_request_in_flight_finishes_on_the_old_card(repo, exported_repo):
    x = threaded_rows(exported_repo)

    async def main():
        async with started(repo, model_control_mode="poll", max_batch_size=len(x)) as reg:
            old = reg.get("iris", "2")
            gated = old.batcher.predict = GatedPredict(old.batcher.predict)
            old.batcher.inline_rows = 0  # on the model's thread: the gate must not hold the loop
            in_flight = asyncio.create_task(submit(old.batcher, x))
            await wait_event(gated.entered)
            renamed = ["Setosa", "Versicolor", "Virginica"]
            edit_card(repo / "iris" / "2", class_names=renamed)
            await reg.poll_once()
            new = reg.get("iris")
            assert new is not old and new.version == 2 and new.card.class_names == renamed
            assert old.card.class_names != renamed
            assert index_rows(await reg.index(), "iris")["2"] == ("READY", "")
            assert not in_flight.done()  # the old version drains: its request is answered, not failed
            gated.gate.set()
            np.testing.assert_array_equal((await in_flight)["label"], old.model.predict(x)["label"])
            np.testing.assert_array_equal((await submit(new.batcher, x))["label"], old.model.predict(x)["label"])
            with pytest.raises(ModelNotReady, match="shutting down"):
                await submit(old.batcher, x[:1])  # retired once drained

    run(main())


@pytest.mark.parametrize("changes, why", [
    ({"default_threshold": float("nan")}, r"default_threshold must be a number in \[0, 1\].*got nan"),
    ({"default_threshold": 1.5}, r"default_threshold must be a number in \[0, 1\].*got 1\.5"),
    ({"class_names": ["setosa", "versicolor"]}, r"selfcheck probabilities row 0 holds 3 numbers, but class_names lists 2"),
    ({"class_names": ["a", "a", "b"]}, r"class_names must be distinct; 'a' appears more than once"),
])
def test_an_edited_card_that_makes_no_sense_is_refused_and_the_old_one_keeps_serving(repo, exported_repo, changes, why):
    x = rows_for(exported_repo, "iris", 16)

    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            old = reg.get("iris", "2")
            edit_card(repo / "iris" / "2", **changes)
            await reg.poll_once()
            assert reg.get("iris") is old
            np.testing.assert_array_equal((await submit(old.batcher, x))["label"], old.model.predict(x)["label"])
            state, reason = index_rows(await reg.index(), "iris")["2"]
            assert state == "READY" and reason.startswith("files changed on disk since loading, and the new ones do not load")
            assert re.search(why, reason), reason
            assert str(repo) not in reason  # paths are the repository's, never the server's

    run(main())


def test_an_edited_default_threshold_decides_one_hot_and_label(repo, exported_repo):
    x = rows_for(exported_repo, "breast-cancer", 64, seed=3)

    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            old = reg.get("breast-cancer")
            p = old.model.predict(x)["probabilities"]
            t = float(np.median(p[:, 1]))  # half the rows on each side: the two thresholds must decide differently
            assert old.card.default_threshold == 0.5 and (p[:, 1] >= t).tolist() != (p[:, 1] >= 0.5).tolist()
            edit_card(repo / "breast-cancer" / "1", default_threshold=t)
            await reg.poll_once()
            new = reg.get("breast-cancer")
            assert new is not old and new.card.default_threshold == t
            out = await submit(new.batcher, x)
            np.testing.assert_array_equal(out["label"], (p[:, 1] >= np.float32(t)).astype(np.int64))
            np.testing.assert_array_equal(out["one_hot"][:, 1], (p[:, 1] >= np.float32(t)).astype(np.float32))

    run(main())


def test_index_reasons_name_paths_relative_to_the_repository(repo, exported_repo):
    model = copy_version(exported_repo, "iris", 2, repo, "iris", 3) / MODEL_FILE
    model.write_bytes(model.read_bytes()[:-16])
    edit_card(copy_version(exported_repo, "iris", 1, repo, "iris", 4), default_threshold="high")

    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            rows = index_rows(await reg.index(), "iris")
            assert rows["3"][1].startswith("iris/3/model.onnx is corrupt: SHA-256"), rows["3"]
            assert rows["4"][1].startswith("iris/4/metadata.json: metadata has a malformed value"), rows["4"]
            assert all(str(repo) not in reason and str(repo.parent) not in reason for _, reason in rows.values())

    run(main())


def test_poll_drains_a_deleted_model_folder_answering_its_requests_in_flight_and_queued(repo, exported_repo):
    x = rows_for(exported_repo, "breast-cancer", 8)
    changes: list[tuple[str, bool]] = []

    async def main():
        async with started(repo, on_change=lambda name, ready: changes.append((name, ready)),
                           model_control_mode="poll", max_batch_size=len(x)) as reg:
            bc = reg.get("breast-cancer")
            gated = bc.batcher.predict = GatedPredict(bc.batcher.predict)
            bc.batcher.inline_rows = 0  # on the model's thread: the gate must not hold the loop
            running = asyncio.create_task(submit(bc.batcher, x))
            await wait_event(gated.entered)
            queued = asyncio.create_task(submit(bc.batcher, x[:3]))
            await asyncio.sleep(0)  # lets the second request reach the queue
            assert bc.batcher.queued_rows == 3
            shutil.rmtree(repo / "breast-cancer")
            await reg.poll_once()
            assert reg.names() == ["iris"] and changes[-1] == ("breast-cancer", False)
            with pytest.raises(ModelNotFound, match="unknown model 'breast-cancer'"):
                reg.get("breast-cancer")
            assert not running.done() and not queued.done()  # held by the gate: the unload waits for them
            gated.gate.set()
            want = gated.predict(x)
            np.testing.assert_array_equal((await running)["probabilities"], want["probabilities"])
            np.testing.assert_array_equal((await queued)["probabilities"], want["probabilities"][:3])
            with pytest.raises(ModelNotReady, match="shutting down"):
                await submit(bc.batcher, x[:1])  # drained, then closed: unloaded

    run(main())


def test_an_edited_card_naming_fewer_classes_than_the_model_has_is_refused_by_the_graph_check(repo):
    folder = repo / "iris" / "2"
    meta = json.loads((folder / METADATA_FILE).read_text())
    probabilities = [row[:2] for row in meta["selfcheck"]["probabilities"]]  # consistent in itself: 2 classes

    async def main():
        async with started(repo, model_control_mode="poll") as reg:
            old = reg.get("iris", "2")
            edit_card(folder, class_names=["setosa", "versicolor"], selfcheck={**meta["selfcheck"], "probabilities": probabilities})
            await reg.poll_once()
            assert reg.get("iris") is old
            state, reason = index_rows(await reg.index(), "iris")["2"]
            assert state == "READY" and "model output 'probabilities' has shape" in reason and "(2 classes)" in reason, reason

    run(main())
