# zoo-server: a slim image that serves an exported zoo model repository over KServe v2 gRPC.
# It holds the zoo wheel and its `serve` dependencies only: no torch, no onnx, no compilers, never trains.
#
#   docker build -t zoo-server .          # the default: CPU-only onnxruntime, the small image
#   docker run -p 8000:8000 -p 8001:8001 -p 8002:8002 -v $PWD/models:/models:ro zoo-server
#   (or deploy/build-image.sh, which also handles podman/buildah)
#
# GPU image, an explicit choice (ORT=onnxruntime-gpu on a CUDA base): the onnxruntime-gpu wheel needs the CUDA and cuDNN runtime libraries, which
# python:*-slim lacks (there the CUDA provider fails to load and every model runs on CPU; start
# with --require-gpu / ZOO_REQUIRE_GPU=1 to make that fatal). Build FROM a CUDA runtime image whose
# CUDA/cuDNN majors match the onnxruntime-gpu that pip installs: the current PyPI wheels (1.31) are
# CUDA 13 + cuDNN 9 builds (the CUDA provider links libcudart.so.13 and libcublas.so.13; older
# releases targeted older CUDA majors: `cuda_version` in onnxruntime/capi/build_and_package_info.py tells), e.g.
#   docker build -t zoo-server:gpu --build-arg ORT=onnxruntime-gpu \
#     --build-arg BASE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04 .
# and run with the NVIDIA container toolkit (`docker run --gpus all ...`) on a host driver new
# enough for CUDA 13 (R580+). That base has no Python: deploy/docker/make-venv.sh installs the
# distribution's python3 (Ubuntu 24.04: 3.12; the zoo wheel needs >= 3.11) with apt.
#
# Build arguments:
#   BASE   base image of both stages; needs python3 >= 3.11 with venv, or apt (default python:3.11-slim-bookworm)
#   ORT    onnxruntime (default: CPU-only, ~275 MB smaller) or onnxruntime-gpu (what the `serve` extra pins; only
#          useful on a CUDA base: on python:*-slim it has no CUDA libraries and runs on the CPU anyway)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_CERT   a package mirror / CA bundle for pip during the build
#          (visible in the image history: never put credentials here, use a build secret instead)

ARG BASE=python:3.11-slim-bookworm

# ---- builder: the zoo wheel and the list of its serving requirements ---------------------------
FROM ${BASE} AS builder
ARG ORT=onnxruntime
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
COPY deploy/docker/make-venv.sh /usr/local/bin/make-venv
RUN make-venv /opt/build
WORKDIR /src
COPY . .
# pyproject.toml stays the one list of serving dependencies: read them (base + `serve` extra) and
# swap only the onnxruntime flavour for ${ORT}. Environment markers stay on the lines: pip evaluates
# them below, against the runtime image's own interpreter.
RUN /opt/build/bin/pip install packaging \
 && /opt/build/bin/pip wheel --no-deps --wheel-dir /dist . \
 && /opt/build/bin/python deploy/docker/serve_requirements.py pyproject.toml serve "${ORT}" > /dist/requirements.txt \
 && cat /dist/requirements.txt

# ---- runtime -------------------------------------------------------------------------------------
FROM ${BASE}
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    ZOO_REPOSITORY=/models \
    ZOO_HOST=0.0.0.0 \
    ZOO_PORT=8001 \
    ZOO_HTTP_PORT=8000 \
    ZOO_METRICS_PORT=8002
COPY deploy/docker/make-venv.sh /usr/local/bin/make-venv
COPY --from=builder /dist /tmp/dist
# One layer: the venv with zoo and its serving requirements, then pip/setuptools removed again.
RUN make-venv /opt/venv \
 && /opt/venv/bin/pip install --requirement /tmp/dist/requirements.txt \
 && /opt/venv/bin/pip install --no-deps /tmp/dist/zoo-*.whl \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && rm -rf /tmp/dist /usr/local/bin/make-venv /root/.cache \
 && groupadd --gid 10001 zoo \
 && useradd --uid 10001 --gid zoo --create-home --home-dir /home/zoo --shell /usr/sbin/nologin zoo \
 && mkdir -p /models
COPY deploy/docker/healthcheck.py /opt/zoo/healthcheck.py

# numeric user, so Kubernetes' runAsNonRoot can verify it
USER 10001:10001
WORKDIR /opt/zoo
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "/opt/zoo/healthcheck.py"]
# zoo-server only serves what is in /models (flags or ZOO_* variables tune it); it never trains.
ENTRYPOINT ["/opt/venv/bin/zoo-server"]
CMD []
