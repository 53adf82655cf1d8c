"""`python -m cortex.gateway`: the HTTP API on `CORTEX_HTTP_HOST:CORTEX_HTTP_PORT`."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvicorn

from cortex.gateway import nats_metrics as nats
from cortex.gateway.app import create_app
from cortex.gateway.state import Gateway
from cortex.kernel.logging import configure_logging, get_logger
from cortex.kernel.service.admin import AdminServer, EmbeddedServer
from cortex.kernel.settings import Settings, SettingsError, load_settings
from cortex.kernel.tracing import traced_process


async def serve(settings: Settings) -> None:
    log = get_logger()
    gateway = Gateway(settings)
    config = uvicorn.Config(
        create_app(gateway),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        # Let requests finish, but an open SSE stream or idle connection must not hold up a stop.
        timeout_graceful_shutdown=int(settings.shutdown_grace),
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    http = EmbeddedServer(config)
    nats_metrics = nats.NatsMetrics(settings, lambda: gateway.nc)
    routes = {nats.PATH: nats_metrics.app} if nats_metrics.enabled else {}
    admin = AdminServer(settings.admin_host, settings.admin_port, gateway.readiness, routes)
    await admin.start()
    if nats_metrics.enabled:
        nats_metrics.start()
    http_task = await http.start_serving()
    url = f"{'https' if settings.tls_cert else 'http'}://{settings.http_host}:{http.port}"
    await gateway.start({"http_url": url, "admin_url": admin.url})
    log.info("gateway listening", url=url, admin_url=admin.url)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, http_task], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    log.info("gateway stopping")
    http.should_exit = True
    await asyncio.gather(http_task, return_exceptions=True)
    await nats_metrics.stop()
    await gateway.stop()
    await admin.stop()


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cortex gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(
        "gateway", settings.log_level, settings.log_format, publish=settings.log_publish
    )
    try:
        with traced_process(settings, "gateway"):
            asyncio.run(serve(settings))
    except OSError as exc:
        print(f"cortex gateway: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
