# One image for every CodeValdCortex process: `python -m cortex.<process>`.
#   docker build -t codevald/cortex .
#   docker run --rm -p 8080:8080 -e CORTEX_NATS_URL=nats://host:4222 codevald/cortex            # gateway
#   docker run --rm -e CORTEX_NATS_URL=... -e CORTEX_STORE=... codevald/cortex cortex.registry   # a service
# An agent image for runtime `kubernetes` starts FROM this one and adds the agent's package
# (docs/kubernetes.md).
#
# Three stages: the dashboard built with Node, the Python packages installed into a virtualenv,
# and the image itself, which takes only their results: no Node, no npm packages, no build
# backends, no pip cache.

# --- the web dashboard (services/dashboard), from its package-lock.json ----------------------
FROM node:20-slim AS dashboard
WORKDIR /src/services/dashboard
COPY services/dashboard/package.json services/dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
# Its API types are generated from the gateway's OpenAPI document.
COPY contracts/openapi/gateway.json /src/contracts/openapi/gateway.json
COPY services/dashboard ./
RUN npm run build

# --- the Python packages, pinned and hash-checked --------------------------------------------
FROM python:3.11-slim AS python
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/cortex/venv
ENV PATH=/opt/cortex/venv/bin:$PATH
WORKDIR /src
# Every package from the runtime lock (the dev lock's pins without the dev tools; `make lock`
# writes both), in a layer of its own that a code change does not rebuild. The locked build
# backends come first, so that nothing is built in an isolated environment, which would fetch an
# unpinned backend: nkeys (source only) and then the project itself; `--no-deps` because the
# lock already brought everything.
COPY requirements/lock-runtime.txt requirements/lock-build.txt requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/lock-build.txt \
    && pip install --no-cache-dir --require-hashes --no-build-isolation \
       -r requirements/lock-runtime.txt
COPY pyproject.toml README.md ./
COPY libs libs
COPY contracts contracts
COPY services services
RUN pip install --no-cache-dir --no-deps --no-build-isolation .

# --- the image --------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/cortex/venv/bin:$PATH \
    CORTEX_DASHBOARD_DIR=/opt/cortex/dashboard
RUN groupadd --system --gid 10001 cortex \
    && useradd --system --uid 10001 --gid cortex --home-dir /home/cortex --create-home cortex
COPY --from=python /opt/cortex/venv /opt/cortex/venv
COPY --from=dashboard /src/services/dashboard/dist /opt/cortex/dashboard

WORKDIR /home/cortex
USER 10001:10001

# 8080: gateway HTTP API (CORTEX_HTTP_PORT); 9090: admin /health, /ready, /metrics of any process
# (set CORTEX_ADMIN_PORT=9090, CORTEX_ADMIN_HOST=0.0.0.0; the Helm chart does).
EXPOSE 8080 9090

ENTRYPOINT ["python", "-m"]
CMD ["cortex.gateway"]
