# The trainer (dataset build, training, export, evaluation) on TensorFlow's GPU runtime.
# Build from the repository root: docker build -f docker/trainer.Dockerfile -t colorizer-trainer .
# Run it through docker-compose.yml (`docker compose --profile train run --rm trainer ...`), which
# mounts ./data, ./models and ./runs and runs it as your own user so what it writes is yours.
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=1

# The trainer imports the service's pipeline, model and contract, so both packages are installed.
COPY pyproject.toml README.md /tmp/colorizer/
COPY service/ /tmp/colorizer/service/
COPY trainer/ /tmp/colorizer/trainer/
RUN python3 -m pip install "/tmp/colorizer[train]" && rm -rf /tmp/colorizer

RUN groupadd --gid 10001 colorizer \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin colorizer
# Relative defaults (runs/<arch>, models/colorizer) land under /app, where compose mounts them.
WORKDIR /app
RUN mkdir -p /app/models /app/runs && chown 10001:10001 /app /app/models /app/runs
USER 10001:10001

ENTRYPOINT ["colorize-train"]
CMD ["--help"]
