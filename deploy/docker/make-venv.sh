#!/bin/sh
# Create a virtual environment at $1 with the base image's python3, installing python3 + venv with
# apt first when the base has none (e.g. BASE=nvidia/cuda:13.*-cudnn-runtime-ubuntu24.04 for the GPU image).
set -eu
venv="$1"
if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates
    rm -rf /var/lib/apt/lists/*
    python3 -m venv "$venv"
fi
# the zoo wheel's requires-python; failing here says so sooner than pip's install of the wheel would
"$venv/bin/python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'
