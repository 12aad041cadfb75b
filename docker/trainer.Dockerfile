# The trainer (dataset build, training, export, evaluation): Debian with Python and TensorFlow from
# PyPI. The default build is for NVIDIA GPUs (`tensorflow[and-cuda]`: CUDA and cuDNN come as wheels,
# the host needs only the driver and the NVIDIA Container Toolkit); `--build-arg TENSORFLOW=tensorflow`
# builds the CPU-only image (docker-compose.cpu.yml does).
# Build from the repository root: docker build -f docker/trainer.Dockerfile -t colorizer-trainer .
# Run it through docker-compose.yml (`docker compose --profile train run --rm trainer ...`), which
# mounts ./data, ./models and ./runs and runs it as your own user so what it writes is yours.
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
    PATH=/opt/venv/bin:$PATH

# Everything small comes before the big TensorFlow layer (see service.Dockerfile).
RUN groupadd --gid 10001 colorizer \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin colorizer

# Debian's Python 3.11 (bookworm's packages get only security fixes, so they are not pinned).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV"

# Relative defaults (runs/<arch>, models/colorizer) land under /app, where compose mounts them.
WORKDIR /app
RUN mkdir -p /app/models /app/runs && chown 10001:10001 /app /app/models /app/runs
ENTRYPOINT ["colorize-train"]
CMD ["--help"]

# The trainer imports the service's pipeline, model and contract, so both packages are installed,
# with the `train` extras. Behind a TLS-intercepting proxy, pass your CA bundle as the build
# secret `pip-ca` (`--secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt`).
COPY pyproject.toml setup.py README.md /tmp/colorizer/
COPY core/ /tmp/colorizer/core/
COPY trainer/ /tmp/colorizer/trainer/
# tensorflow/include: 430 MB of C++ headers, for compiling custom ops only.
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && pip install "${TENSORFLOW}==${TENSORFLOW_VERSION}" "/tmp/colorizer[train]" \
    && rm -rf /tmp/colorizer "$VIRTUAL_ENV"/lib/python3*/site-packages/tensorflow/include

USER 10001:10001
