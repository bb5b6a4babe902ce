"""Datasets: bundled recipes and the user's own files, all offline."""

from zoo.data.dataset import DataError, Dataset, from_arrays, stratified_split
from zoo.data.files import load_file
from zoo.data.recipes import DEFAULT_ZOO, RECIPES, Recipe, get_recipe

__all__ = ["DataError", "Dataset", "from_arrays", "stratified_split", "load_file", "DEFAULT_ZOO", "RECIPES", "Recipe", "get_recipe"]
