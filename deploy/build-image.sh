#!/usr/bin/env bash
# Build the zoo-server image from the repository root with docker, podman or buildah.
#
#   deploy/build-image.sh                         # zoo-server:latest: CPU-only onnxruntime on python:3.11-slim-bookworm
#   GPU=1 deploy/build-image.sh                   # zoo-server:gpu: onnxruntime-gpu on nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
#   HOST_CA=1 ENGINE=podman deploy/build-image.sh --isolation=chroot --network=host
#
# Environment:
#   GPU      1 = the GPU image: ORT=onnxruntime-gpu on the CUDA base below, tagged zoo-server:gpu
#   IMAGE    tag to build (default zoo-server:latest, or zoo-server:gpu with GPU=1)
#   BASE     base image of both stages (default: the Dockerfile's python:3.11-slim-bookworm, or the CUDA base)
#   ORT      onnxruntime (default, CPU-only) or onnxruntime-gpu
#   ENGINE   docker, podman or buildah (default: the first one installed, in that order)
#   HOST_CA  1 = mount this machine's /etc/ssl/certs into the build and point pip at it
#            (behind a TLS-intercepting proxy; podman/buildah only)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL   passed to the build when set (a package mirror)
# Further arguments go to the build command as they are.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "${GPU:-0}" == 1 ]]; then
    # the CUDA/cuDNN majors must match the onnxruntime-gpu wheel pip installs (deploy/README.md says how to check)
    BASE="${BASE:-nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04}"
    ORT="${ORT:-onnxruntime-gpu}"
    IMAGE="${IMAGE:-zoo-server:gpu}"
fi
image="${IMAGE:-zoo-server:latest}"
engine="${ENGINE:-}"
if [[ -z "$engine" ]]; then
    for candidate in docker podman buildah; do
        if command -v "$candidate" >/dev/null; then engine="$candidate"; break; fi
    done
fi
[[ -n "$engine" ]] || { echo "build-image.sh: no docker, podman or buildah found" >&2; exit 1; }

args=(--tag "$image")
[[ -n "${BASE:-}" ]] && args+=(--build-arg "BASE=$BASE")
[[ -n "${ORT:-}" ]] && args+=(--build-arg "ORT=$ORT")
for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
    [[ -n "${!var:-}" ]] && args+=(--build-arg "$var=${!var}")
done
case "$engine" in
    docker) cmd=(docker build) ;;
    podman) cmd=(podman build --format docker) ;;     # docker format keeps HEALTHCHECK (OCI drops it)
    buildah) cmd=(buildah build --format docker) ;;
    *) echo "build-image.sh: unknown ENGINE=$engine" >&2; exit 1 ;;
esac
if [[ "${HOST_CA:-0}" == 1 ]]; then
    [[ "$engine" != docker ]] || { echo "build-image.sh: HOST_CA needs podman or buildah (build-time volumes)" >&2; exit 1; }
    args+=(--volume /etc/ssl/certs:/etc/ssl/certs:ro --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
fi

set -x
"${cmd[@]}" "${args[@]}" "$@" --file "$root/Dockerfile" "$root"
