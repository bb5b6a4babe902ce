"""Where a dataset came from, as a small dict recorded with the run and the export, and how to load it again."""

from __future__ import annotations

from zoo.data.dataset import DataError, Dataset

FILE_SPLIT_SEED = 0  # user files are split by a fixed seed, so the test split is the same run after run
FILE_TEST_FRACTION = 0.2


def of_recipe(name: str, data_dir: str | None = None) -> dict:
    """The origin of a bundled recipe (fashion-mnist may name its folder)."""
    return {"recipe": name, **({"data_dir": data_dir} if data_dir else {})}


def of_file(path: str, target: str) -> dict:
    """The origin of a user's file: its path, the target column(s) and the split."""
    from pathlib import Path

    return {"file": str(Path(path).resolve()), "target": target, "seed": FILE_SPLIT_SEED, "test_fraction": FILE_TEST_FRACTION}


def load(origin: dict, name: str | None = None, *, strict_labels: bool = False) -> Dataset:
    """The dataset an origin names, split as it was at training; DataError when it cannot be loaded.

    `strict_labels` turns a file's label warnings (case variants, tiny classes) into a DataError.
    """
    if "recipe" in origin:
        from zoo.data.recipes import get_recipe

        if origin["recipe"] == "fashion-mnist" and origin.get("data_dir"):
            from zoo.data.builtin import fashion_mnist

            data = fashion_mnist(origin["data_dir"])
        else:
            try:
                data = get_recipe(origin["recipe"]).load()
            except KeyError as e:
                raise DataError(str(e.args[0])) from None
    elif "file" in origin:
        from zoo.data.files import load_file

        data = load_file(
            origin["file"],
            origin["target"],
            name=name,
            seed=origin.get("seed", FILE_SPLIT_SEED),
            test_fraction=origin.get("test_fraction", FILE_TEST_FRACTION),
            strict_labels=strict_labels,
        )
    else:
        raise DataError("the model does not record where its training data came from (exported by an older zoo)")
    data.origin = dict(origin)
    return data
