# syntax=docker/dockerfile:1
# Two stages: every wheel (the project and its dependencies) is built in a throwaway
# stage, then installed offline into a clean runtime image without build tools.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# README.md is the package's long description (pyproject `readme`).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage
COPY sandbox ./sandbox
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DATA_DIR=/data \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8080 \
    MPLCONFIGDIR=/app/matplotlib
RUN groupadd --system --gid 10001 bot \
    && useradd --system --uid 10001 --gid bot --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin bot \
    && mkdir -p /app /data \
    && chown bot:bot /data
# The wheelhouse is bind-mounted from the build stage rather than copied, so no layer
# of the final image carries a second copy of every wheel. DL3013 (pin versions) is moot:
# --no-index installs the one version pip wheel just built from pyproject.toml.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels kling-edit-bot
# The usage chart's font cache (MPLCONFIGDIR) is built once here, readable by the bot, which
# may not write in /app: not again at every container start.
RUN python -c "import matplotlib.font_manager"
WORKDIR /app
# SQLite database, rehosted inputs and archived results: must outlive the container.
VOLUME ["/data"]
# Numeric, so runtimes that enforce non-root (Kubernetes runAsNonRoot) can verify it.
USER 10001:10001
EXPOSE 8080
# python:3.11-slim has no curl; urlopen raises (exit 1) on a refused connection and on
# the 503 that /healthz answers when the database or the event loop is unwell.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WEB_PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
