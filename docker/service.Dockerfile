# The colorization service and its bundled model: Debian with Python and TensorFlow from PyPI.
# The default build is for NVIDIA GPUs: `tensorflow[and-cuda]` brings the CUDA and cuDNN libraries
# TensorFlow was built against, so the host needs only the NVIDIA driver and the NVIDIA Container
# Toolkit; TensorFlow falls back to the CPU when the container sees no GPU. For the smaller CPU-only
# image build with `--build-arg TENSORFLOW=tensorflow` (docker-compose.cpu.yml does).
# Build from the repository root: docker build -f docker/service.Dockerfile -t colorizer-service .
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ARG TENSORFLOW="tensorflow[and-cuda]"
ARG TENSORFLOW_VERSION=2.21.0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    COLORIZER_HOST=0.0.0.0 \
    COLORIZER_PORT=8000 \
    COLORIZER_MODEL_DIR=/app/models/colorizer

# Everything small comes before the big TensorFlow layer: where the storage driver copies whole
# trees (podman's vfs), each step after that layer would copy it once more.
RUN groupadd --gid 10001 colorizer \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin colorizer

# Debian's Python 3.11 (bookworm is a stable release: its packages get only security fixes, so they
# are not pinned), and a venv for everything from PyPI.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV"

WORKDIR /app
# The bundled default model, owned by root, so the service's user can only read it;
# docker-compose.yml mounts ./models read-only over it so retrained versions show up.
COPY models/ /app/models/
EXPOSE 8000
# Loading and warming the model up takes a while on first start; /readyz answers 200 only once it has.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('COLORIZER_PORT', '8000') + '/readyz', timeout=4)"]
CMD ["colorize-serve"]

# Only the service: it never imports the trainer, and the training extras stay out. pip checks
# PyPI's certificate with its own CA bundle; behind a TLS-intercepting proxy, pass yours as the
# build secret `pip-ca` (`--secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt`, docker or podman).
COPY pyproject.toml setup.py README.md /tmp/colorizer/
COPY core/ /tmp/colorizer/core/
COPY service/ /tmp/colorizer/service/
# tensorflow/include: 430 MB of C++ headers, for compiling custom ops only.
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pip install "${TENSORFLOW}==${TENSORFLOW_VERSION}" "/tmp/colorizer[serve]" \
    && rm -rf /tmp/colorizer "$VIRTUAL_ENV"/lib/python3*/site-packages/tensorflow/include

USER 10001:10001
