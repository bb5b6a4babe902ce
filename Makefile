# Two commands on a fresh machine:  `make serve` (the service on the default zoo)  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first and pinned: here it is the CPU build on local disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: setup serve test lint bench clean

setup: $(VENV)/.installed

# pip is quiet here, so say what runs and that it takes a while (a newcomer saw ~95 s of silence).
$(VENV)/.installed: pyproject.toml
	@echo "setup: creating $(VENV) and installing zoo with its dev tools (first time only: a minute or two)"
	$(PYTHON) -m venv $(VENV)
	@echo "setup: [1/2] $(TORCH) (the CPU build)"
	$(BIN)/pip install -q --disable-pip-version-check "$(TORCH)"
	@echo "setup: [2/2] zoo[dev]: onnxruntime, grpc, aiohttp, scikit-learn, test and lint tools"
	$(BIN)/pip install -q --disable-pip-version-check -e ".[dev]"
	touch $@
	@echo "setup: done"

serve: setup  ## fill ./models with the default zoo if it lacks it, then serve it (gRPC :8001, HTTP :8000, metrics :8002)
	@echo "serve: training and exporting the default zoo into ./models where it is missing (about a minute the first time)"
	$(BIN)/zoo bootstrap
	$(BIN)/zoo serve

test: setup
	$(BIN)/python -m pytest

lint: setup  ## ruff (lint and format) and mypy on zoo/, server/ and client/
	$(BIN)/ruff check zoo server client
	$(BIN)/ruff format --check zoo server client
	MYPY=$(abspath $(BIN))/mypy bash .ci/typecheck

bench: setup  ## training bench, then the serving bench (every serving goal, 3 rounds, ~20 min; rewrites "## Serving" in bench/RESULTS.md)
	$(BIN)/python bench/train_bench.py
	$(BIN)/python bench/serve_bench.py

clean:
	rm -rf $(VENV) runs models bench/out .pytest_cache
