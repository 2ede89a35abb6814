# docjobs: one image for every role; the command picks it (`docjobs web` by default,
# `docjobs worker`, `docjobs scheduler`, `docjobs migrate`).
#
# BASE_IMAGE: any Debian-like image with python3 (3.11+) and its venv module. The default is the
# official Python image; a machine that cannot pull from a registry passes a local one
# (containers/build-base-image.sh builds one with debootstrap).
#
# Behind a TLS-intercepting proxy, give pip the proxy's CA bundle as a build secret; it is
# mounted for the install only and never stored in the image:
#   docker build --secret id=pip_cert,src=/path/to/ca-bundle.crt .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/docjobs \
    PATH=/opt/docjobs/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PORT=3000

# A virtualenv, so the install works on the official image and on a Debian base alike
# (Debian's own python3 refuses system-wide pip installs, PEP 668).
# The dependencies first, from pyproject.toml alone: this layer stays cached while the code changes.
WORKDIR /src
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip_cert \
    set -eu; \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    python3 -m venv /opt/docjobs; \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        >/tmp/requirements.txt; \
    pip install --quiet -r /tmp/requirements.txt 'setuptools>=69' wheel; \
    rm /tmp/requirements.txt

# The code: built offline with the setuptools installed above.
COPY README.md ./
COPY docjobs ./docjobs
RUN pip install --quiet --no-deps --no-build-isolation . \
    && cd / && rm -rf /src \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin docjobs

USER docjobs
WORKDIR /home/docjobs
EXPOSE 3000
# One check for every role: `docjobs health` reads the role from the container's command
# (web: GET /healthz; worker: its heartbeat row; scheduler: the cron table fired on time).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["docjobs", "health"]
CMD ["docjobs", "web"]
