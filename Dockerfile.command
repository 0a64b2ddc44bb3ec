# healthpay/command-service: the write API (`healthpay serve-commands`). The same image runs
# the relay (`healthpay relay`) and the migrations (`healthpay db migrate`), whose code it holds.
#   docker build -t healthpay/command-service:v2.0 -f Dockerfile.command .
#
# The build and base stages are the same in Dockerfile.command, Dockerfile.projection and
# Dockerfile.api, byte for byte (tests/unit/test_deployment_tools.py holds them together), so
# the three images share these layers: one installed package, one non-root user. Only the
# last stage differs: the process it starts, its port and its health check.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY schemas ./schemas
COPY infrastructure ./infrastructure
COPY command_service ./command_service
COPY projection_service ./projection_service
COPY api_gateway ./api_gateway
COPY cli ./cli
RUN python -m venv /opt/healthpay && /opt/healthpay/bin/pip install --no-cache-dir /src

# Runs as uid 10001 (the manifests' runAsUser) and writes nothing: the manifests mount the
# root file system read-only, with /tmp as the only writable place.
FROM python:3.11-slim-bookworm AS base
ENV PATH=/opt/healthpay/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 healthpay \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin healthpay
COPY --from=build /opt/healthpay /opt/healthpay
WORKDIR /tmp
USER 10001:10001

# The write API; alive and ready as the Kubernetes probes ask (/health/ready: PostgreSQL).
FROM base
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/health/ready', timeout=3)"]
CMD ["healthpay", "serve-commands", "--host", "0.0.0.0", "--port", "3000"]
