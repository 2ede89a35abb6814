# docjobs: the web app (self-trigger endpoint, health, embedded worker) by default;
# the same image runs `docjobs worker` and `docjobs migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=3000

WORKDIR /app
COPY pyproject.toml README.md ./
COPY docjobs ./docjobs
RUN pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin docjobs

USER docjobs
WORKDIR /home/docjobs
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"3000\")}/healthz', timeout=4)"
CMD ["docjobs", "web"]
