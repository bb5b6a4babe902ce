"""RepositoryFiles on real files: names checked, symlinks contained, only bounded regular files read (FIFOs,
devices and huge sparse files refused without reading), stat signatures, and which folders count as versions."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tests.integration.server.server_helpers import copy_version
from zoo.core import repository
from zoo.core.repository import METADATA_FILE, MODEL_FILE
from zoo.server.errors import InvalidInput
from zoo.server.model_files import MAX_METADATA_BYTES, PNG_SIGNATURE, RepositoryFiles

HANG_GUARD_S = 30  # only ever reached if a read blocks: a failure, not a timing assumption
ONE_TB = 1 << 40


@pytest.fixture
def repo(exported_repo, tmp_path) -> Path:
    """A repository in tmp_path holding a copy of the real iris v1 export."""
    root = tmp_path / "models"
    copy_version(exported_repo, "iris", 1, root, "iris", 1)
    return root


def files(root: Path, *, max_model_bytes: int = 1 << 30, allow_external_symlinks: bool = False) -> RepositoryFiles:
    """The server's reader over `root`."""
    return RepositoryFiles(root, max_model_bytes=max_model_bytes, allow_external_symlinks=allow_external_symlinks)


def run_guarded(fn, *args, unblock=None):
    """fn(*args) in a daemon thread joined with a hang guard: its result, or its exception re-raised here."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn(*args)
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    if thread.is_alive():
        if unblock is not None:
            unblock()  # let the stuck thread go before failing
        pytest.fail(f"{getattr(fn, '__name__', fn)} blocked for {HANG_GUARD_S} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def open_fifo_writer(path: Path):
    """A callable that opens and closes the FIFO for writing, releasing a reader stuck in open()."""
    def unblock():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    return unblock


def version_dir(root: Path, name: str = "iris", version: int = 1) -> Path:
    """<root>/<name>/<version>."""
    return root / name / str(version)


# names and containment


@pytest.mark.parametrize("name", ["../x", "/etc", ".hidden", "a" * 129, "", ".", "..", "a/b", "_x", "-x", "a b", "é"])
def test_an_impossible_name_is_invalid_input(repo, name):
    with pytest.raises(InvalidInput, match="invalid model name"):
        files(repo).model_dir(name)


@pytest.mark.parametrize("name", ["iris", "a" * 128, "v1.2_b-c", "9lives"])
def test_a_valid_name_is_the_folder_under_the_root(repo, name):
    assert files(repo).model_dir(name) == repo / name


def test_a_model_folder_symlinked_outside_the_repository_is_refused_unless_allowed(repo, exported_repo, tmp_path):
    outside = tmp_path / "outside"
    copy_version(exported_repo, "iris", 1, outside, "ext", 1)
    (repo / "ext").symlink_to(outside / "ext", target_is_directory=True)
    with pytest.raises(ValueError, match="ext resolves outside the repository.*--allow-external-symlinks"):
        files(repo).model_dir("ext")
    with pytest.raises(ValueError, match="resolves outside"):
        files(repo).versions("ext")
    reader = files(repo, allow_external_symlinks=True)
    assert reader.versions("ext") == [1]
    assert reader.read_version("ext", 1).card.name == "ext"


def test_a_model_folder_symlinked_to_another_model_folder_inside_the_repository_is_allowed(repo):
    (repo / "alias").symlink_to(repo / "iris", target_is_directory=True)
    assert files(repo).versions("alias") == [1]


def test_a_model_file_symlinked_outside_its_model_folder_is_refused_unless_allowed(repo, tmp_path):
    elsewhere = tmp_path / "elsewhere.onnx"
    model = version_dir(repo) / MODEL_FILE
    elsewhere.write_bytes(model.read_bytes())
    model.unlink()
    model.symlink_to(elsewhere)
    with pytest.raises(ValueError, match="is a symlink that leaves the model's folder; refused"):
        run_guarded(files(repo).read_version, "iris", 1)
    assert run_guarded(files(repo, allow_external_symlinks=True).read_version, "iris", 1).model == elsewhere.read_bytes()


# what may be read


def test_read_version_returns_the_card_the_verified_bytes_and_the_signature(repo):
    reader = files(repo)
    got = reader.read_version("iris", 1)
    assert (got.card.name, got.card.version) == ("iris", 1)
    assert got.model == (version_dir(repo) / MODEL_FILE).read_bytes()
    assert repository.sha256_bytes(got.model) == got.card.model_sha256
    assert got.signature == reader.signature("iris", 1)


@pytest.mark.parametrize("fname", [MODEL_FILE, METADATA_FILE])
def test_a_fifo_is_refused_without_blocking(repo, fname):
    path = version_dir(repo) / fname
    path.unlink()
    os.mkfifo(path)  # opening it for reading would wait for a writer that never comes
    with pytest.raises(ValueError, match=f"{fname} is not a regular file \\(a FIFO\\); refused"):
        run_guarded(files(repo).read_version, "iris", 1, unblock=open_fifo_writer(path))


def test_dev_zero_as_model_file_is_refused_as_a_symlink_leaving_the_folder(repo):
    path = version_dir(repo) / MODEL_FILE
    path.unlink()
    path.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="leaves the model's folder"):
        run_guarded(files(repo).read_version, "iris", 1)


def test_dev_zero_as_model_file_is_refused_as_not_a_regular_file_even_with_external_symlinks_allowed(repo):
    path = version_dir(repo) / MODEL_FILE
    path.unlink()
    path.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="is not a regular file \\(a character device\\); refused"):
        run_guarded(files(repo, allow_external_symlinks=True).read_version, "iris", 1)


def test_a_sparse_1tb_model_file_is_refused_by_its_size_without_reading(repo):
    path = version_dir(repo) / MODEL_FILE
    os.truncate(path, ONE_TB)  # sparse: takes no disk, but reading it would take hours
    with pytest.raises(ValueError, match=f"is {ONE_TB:,} bytes; the limit is {1 << 30:,} \\(raise it with --max-model-bytes\\)"):
        run_guarded(files(repo).read_version, "iris", 1)


def test_a_sparse_1tb_metadata_file_is_refused_by_its_size_without_a_flag_hint(repo):
    path = version_dir(repo) / METADATA_FILE
    os.truncate(path, ONE_TB)
    with pytest.raises(ValueError, match=f"is {ONE_TB:,} bytes; the limit is {MAX_METADATA_BYTES:,}$"):
        run_guarded(files(repo).read_version, "iris", 1)


def test_a_model_file_over_max_model_bytes_is_refused_and_one_at_the_limit_is_read(repo):
    size = (version_dir(repo) / MODEL_FILE).stat().st_size
    with pytest.raises(ValueError, match=f"is {size:,} bytes; the limit is {size - 1:,}"):
        files(repo, max_model_bytes=size - 1).read_version("iris", 1)
    assert len(files(repo, max_model_bytes=size).read_version("iris", 1).model) == size


def test_a_model_file_whose_bytes_do_not_match_the_card_is_corrupt(repo):
    path = version_dir(repo) / MODEL_FILE
    data = path.read_bytes()
    path.write_bytes(data[:-8] + bytes(8))
    with pytest.raises(ValueError, match="is corrupt: SHA-256 .* does not match the exported"):
        files(repo).read_version("iris", 1)


def test_a_missing_model_file_is_named(repo):
    (version_dir(repo) / MODEL_FILE).unlink()
    with pytest.raises(ValueError, match=f"{MODEL_FILE} is missing"):
        files(repo).read_version("iris", 1)


def test_metadata_naming_another_model_or_version_is_refused(repo):
    path = version_dir(repo) / METADATA_FILE
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "version": 2}))
    with pytest.raises(ValueError, match="says iris v2, but the folder is iris/1"):
        files(repo).read_version("iris", 1)


# signatures


def test_signature_is_stable_for_untouched_files(repo):
    before = files(repo).signature("iris", 1)
    files(repo).read_version("iris", 1)  # reading (another reader, every byte) changes nothing it records
    assert files(repo).signature("iris", 1) == before
    for part, fname in zip(before, (METADATA_FILE, MODEL_FILE), strict=True):  # the files' own stat facts
        st = os.stat(version_dir(repo) / fname)
        assert part is not None and part[:4] == (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def test_signature_changes_when_model_file_is_rewritten_in_place(repo):
    reader = files(repo)
    before = reader.signature("iris", 1)
    path = version_dir(repo) / MODEL_FILE
    path.write_bytes(path.read_bytes() + b"\0")  # same inode, new size
    after = reader.signature("iris", 1)
    assert after[1] != before[1] and after[0] == before[0]  # model.onnx changed, metadata.json did not


def test_signature_changes_when_a_file_is_replaced_with_identical_bytes(repo):
    reader = files(repo)
    before = reader.signature("iris", 1)
    path = version_dir(repo) / METADATA_FILE
    tmp = path.with_name(".tmp")
    tmp.write_bytes(path.read_bytes())
    os.replace(tmp, path)  # a new inode: what an exporter's atomic rename leaves
    after = reader.signature("iris", 1)
    assert after[0] != before[0] and after[1] == before[1]


def test_signature_has_none_for_a_missing_file(repo):
    (version_dir(repo) / MODEL_FILE).unlink()
    sig = files(repo).signature("iris", 1)
    assert sig[0] is not None and sig[1] is None


# listings


def test_versions_lists_canonical_numeric_folders_only_in_numeric_order(repo):
    model = repo / "iris"
    for name in ["2", "10", "01", "0", "+3", "1.0", " 4", "v5", ".staging-6-123", "99999999999999999999"]:
        (model / name).mkdir()
    (model / "7").write_text("a file, not a folder")
    assert files(repo).versions("iris") == [1, 2, 10]


def test_versions_of_a_missing_model_or_a_model_that_is_a_file_is_empty(repo):
    (repo / "plain").write_text("not a folder")
    assert files(repo).versions("gone") == [] and files(repo).versions("plain") == []


def test_model_names_lists_valid_folders_only(repo, tmp_path):
    for name in [".hidden", "_private", "b-model"]:
        (repo / name).mkdir()
    (repo / "file-model").write_text("x")
    assert files(repo).model_names() == ["b-model", "iris"]
    assert files(tmp_path / "nowhere").model_names() == []


# figures


def figure(repo: Path, data: bytes = PNG_SIGNATURE + b"a training curve") -> str:
    """Put a training curve beside iris v1's model; the SHA-256 a card would record for it."""
    (version_dir(repo) / repository.FIGURES["training_curve"]).write_bytes(data)
    return repository.sha256_bytes(data)


def test_a_figure_is_read_when_its_bytes_match_the_recorded_digest(repo):
    digest = figure(repo)
    assert run_guarded(files(repo).read_figure, "iris", 1, "training_curve", digest) == PNG_SIGNATURE + b"a training curve"


@pytest.mark.parametrize("data, digest, says", [
    (PNG_SIGNATURE + b"other bytes", None, "changed since export"),
    (b"GIF89a not a png", "own", "is not a PNG"),
])
def test_a_figure_that_is_not_the_exported_png_is_refused(repo, data, digest, says):
    recorded = figure(repo)
    figure(repo, data)
    with pytest.raises(ValueError, match=says):
        files(repo).read_figure("iris", 1, "training_curve", repository.sha256_bytes(data) if digest == "own" else recorded)


def test_only_the_figures_named_in_the_repository_module_can_be_read(repo):
    with pytest.raises(ValueError, match="is not a figure"):
        files(repo).read_figure("iris", 1, "../1/model", "0" * 64)
    with pytest.raises(InvalidInput, match="invalid model name"):
        files(repo).read_figure("../iris", 1, "training_curve", "0" * 64)


def test_a_figure_symlinked_outside_its_model_folder_or_to_a_fifo_or_too_big_is_refused(repo, tmp_path, monkeypatch):
    path = version_dir(repo) / repository.FIGURES["training_curve"]
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG_SIGNATURE)
    path.symlink_to(outside)
    with pytest.raises(ValueError, match="leaves the model's folder"):
        run_guarded(files(repo).read_figure, "iris", 1, "training_curve", repository.sha256_bytes(PNG_SIGNATURE))
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ValueError, match="not a regular file \\(a FIFO\\)"):
        run_guarded(files(repo).read_figure, "iris", 1, "training_curve", "0" * 64, unblock=open_fifo_writer(path))
    path.unlink()
    digest = figure(repo)
    monkeypatch.setattr("zoo.server.model_files.MAX_FIGURE_BYTES", 8)
    with pytest.raises(ValueError, match="the limit is 8$"):
        files(repo).read_figure("iris", 1, "training_curve", digest)


# messages name paths relative to the repository (RepositoryIndex shows them to clients)


@pytest.mark.parametrize("break_it, message", [
    (lambda v: (v / MODEL_FILE).unlink(), "iris/1/model.onnx is missing"),
    (lambda v: (v / MODEL_FILE).write_bytes(b"x"), "iris/1/model.onnx is corrupt: SHA-256 "),
    (lambda v: (v / METADATA_FILE).write_text("{"), "iris/1/metadata.json is not valid JSON: "),
    (lambda v: ((v / MODEL_FILE).unlink(), os.mkfifo(v / MODEL_FILE)), "iris/1/model.onnx is not a regular file (a FIFO); refused"),
])
def test_read_errors_name_paths_relative_to_the_repository(repo, break_it, message):
    break_it(version_dir(repo))
    with pytest.raises(ValueError) as e:
        files(repo).read_version("iris", 1)
    assert str(e.value).startswith(message) and str(repo) not in str(e.value)


def test_a_model_folder_symlinked_outside_names_no_server_path(repo, tmp_path):
    (repo / "ext").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ValueError) as e:
        files(repo).model_dir("ext")
    assert "ext resolves outside the repository" in str(e.value) and str(tmp_path) not in str(e.value)
