# One image for every CodeValdCortex process: `python -m cortex.<process>`.
#   docker build -t codevald/cortex .
#   docker run --rm -p 8080:8080 -e CORTEX_NATS_URL=nats://host:4222 codevald/cortex            # gateway
#   docker run --rm -e CORTEX_NATS_URL=... -e CORTEX_STORE=... codevald/cortex cortex.registry   # a service
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Every package pinned and hash-checked from the runtime lock (the dev lock's pins without the dev
# tools; `make lock` writes both), in a layer of its own that a code change does not rebuild.
# The locked build backends come first, so that nothing is built in an isolated environment, which
# would fetch an unpinned backend: nkeys (source only) and then the project itself; `--no-deps`
# because the lock already brought everything.
COPY requirements/lock-runtime.txt requirements/lock-build.txt requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/lock-build.txt \
    && pip install --no-cache-dir --require-hashes --no-build-isolation \
       -r requirements/lock-runtime.txt
COPY . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && rm -rf /src \
    && groupadd --system --gid 10001 cortex \
    && useradd --system --uid 10001 --gid cortex --home-dir /home/cortex --create-home cortex

WORKDIR /home/cortex
USER 10001:10001

# 8080: gateway HTTP API (CORTEX_HTTP_PORT); 9090: admin /health, /ready, /metrics of any process
# (set CORTEX_ADMIN_PORT=9090, CORTEX_ADMIN_HOST=0.0.0.0; the Helm chart does).
EXPOSE 8080 9090

ENTRYPOINT ["python", "-m"]
CMD ["cortex.gateway"]
