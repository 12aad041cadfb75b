# The colorization service and its bundled model, on TensorFlow's GPU runtime.
# TensorFlow runs on the CPU when the container sees no GPU; for a smaller CPU-only image build
# with `--build-arg BASE_IMAGE=tensorflow/tensorflow:2.21.0` (docker-compose.cpu.yml does).
# Build from the repository root: docker build -f docker/service.Dockerfile -t colorizer-service .
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=1

# The base image's TensorFlow already satisfies the project's pin, so pip adds only the service's
# own dependencies. The trainer is not copied: the service never imports it.
COPY pyproject.toml README.md /tmp/colorizer/
COPY service/ /tmp/colorizer/service/
RUN python3 -m pip install /tmp/colorizer && rm -rf /tmp/colorizer

RUN groupadd --gid 10001 colorizer \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin colorizer
WORKDIR /app
# The bundled default model; docker-compose.yml mounts ./models over it so retrained versions show up.
COPY models/ /app/models/

ENV COLORIZER_HOST=0.0.0.0 \
    COLORIZER_PORT=8000 \
    COLORIZER_MODEL_DIR=/app/models/colorizer

USER 10001:10001
EXPOSE 8000

# Loading and warming the model up takes a while on first start; /readyz answers 200 only once it has.
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('COLORIZER_PORT', '8000') + '/readyz', timeout=4)"]

CMD ["colorize-serve"]
