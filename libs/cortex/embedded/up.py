"""`cortex up`: the whole platform on one machine, on the embedded defaults.

nats-server from the wheel (JetStream, store under the data dir; one server, or a cluster of
three with `CORTEX_NATS_CLUSTER=3`), every service that is installed (`CORTEX_REPLICAS` processes
of each), the gateway and the agent hosts, supervised; SQLite event stores under the data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import importlib.util
import os
import shutil
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

import httpx
import msgspec

from cortex.contracts.subjects import SERVICES
from cortex.embedded.nats_auth import RoleKeys, ensure_keys, render_authorization
from cortex.embedded.natsserver import (
    JetStreamNotReady,
    NatsServerConfig,
    NatsServerNotFound,
    cluster_configs,
    wait_for_jetstream,
)
from cortex.embedded.prometheus import ScrapeTargets, config_path
from cortex.embedded.supervisor import ChildSpec, Supervisor
from cortex.kernel import __version__
from cortex.kernel.bus.connection import connect
from cortex.kernel.bus.streams import (
    StreamReplicasError,
    StreamStorageError,
    ensure_buckets,
    ensure_streams,
)
from cortex.kernel.secrets import ensure_key_file
from cortex.kernel.settings import Settings, redact_url
from cortex.kernel.tokens import generate_token, write_private

NATS_CONNECT_TIMEOUT = 15.0
JETSTREAM_TIMEOUT = 30.0
"""How long nats-server gets to serve JetStream; a cluster must also elect its meta leader."""
CLUSTER_PORT_OFFSET = 2000
"""A cluster node's route port is its client port + 2000 (4222 -> 6222, as NATS's defaults)."""


class UpError(RuntimeError):
    """A reason `cortex up` cannot start, worded for the user."""


def _runnable(package: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.__main__") is not None
    except ModuleNotFoundError:
        return False


def installed_services() -> list[str]:
    return [s for s in SERVICES if _runnable(f"cortex.{s}")]


def host_count(settings: Settings) -> int:
    # Agent hosts arrive with the lifecycle service; until then there is nothing to host.
    if not _runnable("cortex.host"):
        return 0
    return int(os.environ.get("CORTEX_HOSTS", "1") or "1")


def replica_names(service: str, replicas: int) -> list[str]:
    """The supervisor's (and the log files') names of a service's processes: the service's
    own name when there is one, `<service>-1` ... `<service>-N` when there are more."""
    if replicas == 1:
        return [service]
    return [f"{service}-{n + 1}" for n in range(replicas)]


def nats_server_configs(
    settings: Settings, data_dir: Path, authorization: str = ""
) -> list[NatsServerConfig]:
    """The nats-servers to start: one, storing under `<data dir>/nats`, or the nodes of a
    cluster on `CORTEX_NATS_PORT` and the ports after it, each storing under
    `<data dir>/nats/n<i>`; each with the `authorization` block given."""
    store = data_dir / "nats"
    nodes = settings.nats_cluster
    if nodes == 1:
        return [
            NatsServerConfig(
                store_dir=store,
                port=settings.nats_port,
                monitor_port=settings.nats_monitor_port,
                tls_cert=settings.nats_tls_cert,
                tls_key=settings.nats_tls_key,
                authorization=authorization,
            )
        ]
    ports = [settings.nats_port + n for n in range(nodes)]
    monitors = [
        settings.nats_monitor_port + n if settings.nats_monitor_port else 0 for n in range(nodes)
    ]
    routes = [port + CLUSTER_PORT_OFFSET for port in ports]
    if routes[-1] > 65535:
        raise UpError(
            f"a {nodes}-node NATS cluster serves clients on CORTEX_NATS_PORT and the {nodes - 1} "
            f"ports after it and routes on those + {CLUSTER_PORT_OFFSET}, up to {routes[-1]}; "
            f"set CORTEX_NATS_PORT to at most {65535 - CLUSTER_PORT_OFFSET - nodes + 1}"
        )
    if monitors[-1] > 65535:
        raise UpError(
            f"a {nodes}-node NATS cluster monitors on CORTEX_NATS_MONITOR_PORT and the "
            f"{nodes - 1} ports after it; set CORTEX_NATS_MONITOR_PORT to at most "
            f"{65535 - nodes + 1}, or 0 for none"
        )
    return cluster_configs(
        store,
        ports,
        routes,
        monitors,
        tls_cert=settings.nats_tls_cert,
        tls_key=settings.nats_tls_key,
        authorization=authorization,
    )


def check_nats_ports(configs: list[NatsServerConfig], http_port: int) -> None:
    """Every port the nats-servers will listen on is free, and none is taken twice."""
    planned: dict[int, str] = {http_port: "CORTEX_HTTP_PORT"}
    for conf in configs:
        for port, what, variable in (
            (conf.port, "the NATS", "CORTEX_NATS_PORT"),
            (conf.cluster_port, "the NATS cluster", "CORTEX_NATS_PORT"),
            (conf.monitor_port, "the NATS monitoring", "CORTEX_NATS_MONITOR_PORT"),
        ):
            if not port:
                continue
            if port in planned:
                raise UpError(
                    f"{what} port {port} is also meant for {planned[port]}; set {variable} "
                    "to another port"
                )
            planned[port] = variable
            check_port("127.0.0.1", port, what, variable)


def stream_replicas(settings: Settings) -> int:
    """Replicas of every stream: one per node of a cluster `cortex up` runs, unless
    CORTEX_NATS_REPLICAS says otherwise."""
    if settings.nats_cluster > 1 and "CORTEX_NATS_REPLICAS" not in os.environ:
        return settings.nats_cluster
    return settings.nats_replicas


def prepare_data_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UpError(
            f"the data dir {path} is not writable ({exc.strerror or exc}); "
            "set CORTEX_DATA_DIR to a directory you can write"
        ) from None
    return path.resolve()


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `cortex up` per data dir: two would fight over the same stores."""
    lock_path = data_dir / "cortex.lock"
    fh = lock_path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        owner = fh.read().strip() or "unknown"
        fh.close()
        raise UpError(
            f"another `cortex up` (pid {owner}) is using the data dir {data_dir}; stop it "
            "first or set CORTEX_DATA_DIR"
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    try:
        yield
    finally:
        fh.close()


def admin_token(settings: Settings, data_dir: Path) -> tuple[str, str]:
    """The admin token and where it came from: the environment, the data dir, or new."""
    if settings.admin_token:
        return settings.admin_token, "from CORTEX_ADMIN_TOKEN"
    path = data_dir / "admin.token"
    if path.exists() and path.read_text().strip():
        return path.read_text().strip(), f"from {path}"
    token = generate_token()
    write_private(path, token + "\n")
    return token, f"new, saved to {path} (mode 0600)"


def check_port(host: str, port: int, what: str, variable: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As the servers themselves bind: connections of a run just stopped wait in TIME_WAIT
        # for a minute, and without this the port would look taken all that time.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UpError(
                f"{what} port {host}:{port} is not free ({exc.strerror}); another program "
                f"(or another `cortex up`) uses it: set {variable} to another port"
            ) from None


async def tcp_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    return True


def role_env(keys: dict[str, RoleKeys], role: str) -> dict[str, str]:
    """How a child signs in to the NATS `cortex up` started: its role's seed and inbox. None
    for an external NATS: the children keep what `cortex up` was given."""
    if not keys:
        return {}
    entry = keys[role]
    return {
        "CORTEX_NATS_NKEY": str(entry.seed_path),
        "CORTEX_NATS_INBOX_PREFIX": entry.role.inbox_prefix,
    }


def child_env(
    settings: Settings, data_dir: Path, nats_url: str, token: str, fmt: str
) -> dict[str, str]:
    return {
        "CORTEX_DATA_DIR": str(data_dir),
        "CORTEX_NATS_URL": nats_url,
        "CORTEX_NATS_PREFIX": settings.nats_prefix,
        "CORTEX_NATS_REPLICAS": str(settings.nats_replicas),
        "CORTEX_STORE": settings.store or f"sqlite:///{data_dir / 'store'}",
        "CORTEX_ADMIN_TOKEN": token,
        "CORTEX_ADMIN_PORT": "0",
        "CORTEX_LOG_FORMAT": fmt,
        "CORTEX_LOG_LEVEL": settings.log_level,
        "PYTHONUNBUFFERED": "1",
    }


async def run_up(settings: Settings, out: TextIO) -> int:
    data_dir = prepare_data_dir(settings.data_path)
    with data_dir_lock(data_dir):
        return await _run(settings, data_dir, out)


async def _run(settings: Settings, data_dir: Path, out: TextIO) -> int:
    token, token_source = admin_token(settings, data_dir)
    check_port(settings.http_host, settings.http_port, "the HTTP", "CORTEX_HTTP_PORT")
    start_nats = not settings.nats_url
    nats_configs: list[NatsServerConfig] = []
    keys: dict[str, RoleKeys] = {}
    if start_nats:
        keys = ensure_keys(data_dir / "nats" / "auth", settings.subjects())
        nats_configs = nats_server_configs(settings, data_dir, render_authorization(keys))
        check_nats_ports(nats_configs, settings.http_port)
        # From here on, `settings` is what the children get: every server's URL. `cortex up`
        # itself signs in as admin; each child as its role (`role_env`).
        settings = msgspec.structs.replace(
            settings,
            nats_url=",".join(conf.url for conf in nats_configs),
            nats_replicas=stream_replicas(settings),
            nats_nkey=str(keys["admin"].seed_path),
        )
    elif settings.nats_cluster > 1:
        raise UpError(
            f"CORTEX_NATS_CLUSTER={settings.nats_cluster} starts a NATS cluster of cortex up's "
            "own, and CORTEX_NATS_URL says to use an existing NATS: unset one of them"
        )
    nats_url = settings.effective_nats_url
    fmt = (
        settings.log_format
        if settings.log_format != "auto"
        else ("console" if out.isatty() else "json")
    )
    env = child_env(settings, data_dir, nats_url, token, fmt)
    # Only the lifecycle service (seals) and the agent hosts (open) read the secrets key.
    secrets = {
        "CORTEX_SECRETS_KEY": settings.secrets_key or str(ensure_key_file(data_dir / "secrets.key"))
    }
    python = sys.executable
    http_url = settings.http_url
    verify = settings.tls_verify()
    services = installed_services()
    hosts = host_count(settings)
    monitor_urls = ",".join(
        f"http://{conf.host}:{conf.monitor_port}" for conf in nats_configs if conf.monitor_port
    )
    targets = ScrapeTargets(
        settings,
        data_dir,
        lambda: {str(c.proc.pid): c.spec.name for c in sup.children if c.proc},
        nats_metrics=bool(monitor_urls or settings.nats_monitor_urls),
    )

    sup = Supervisor(data_dir / "logs", out, grace=settings.shutdown_grace, echo=echo_line)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    interrupts = Interrupts(loop.time)

    def on_signal() -> None:
        if interrupts.escalates():
            sup.say("cortex up: interrupted again; killing everything now")
            sup.kill_all()
        elif stop.is_set():
            sup.say("cortex up: already stopping; interrupt once more to kill everything")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    sup.say(f"CodeValdCortex {__version__}: starting the platform (data dir {data_dir})")
    try:
        if nats_configs:
            await start_nats_servers(
                sup, nats_configs, data_dir, settings.nats_tls(), settings.nats_nkey
            )
        await prepare_streams(settings)
        for service in services:
            for name in replica_names(service, settings.replicas):
                await sup.start(
                    ChildSpec(
                        name=name,
                        argv=[python, "-m", f"cortex.{service}"],
                        env={
                            **env,
                            **role_env(keys, service),
                            **(secrets if service == "lifecycle" else {}),
                        },
                        stop_group="services",
                    )
                )
        host_names = [f"host-{n + 1}" for n in range(hosts)]
        await sup.start(
            ChildSpec(
                name="gateway",
                argv=[python, "-m", "cortex.gateway"],
                env={
                    **env,
                    **role_env(keys, "gateway"),
                    "CORTEX_HTTP_HOST": settings.http_host,
                    "CORTEX_HTTP_PORT": str(settings.http_port),
                    "CORTEX_READY_SERVICES": ",".join(services),
                    "CORTEX_READY_HOSTS": ",".join(host_names),
                    # The NATS servers' figures, served as Prometheus metrics.
                    **({"CORTEX_NATS_MONITOR_URLS": monitor_urls} if monitor_urls else {}),
                },
                ready=lambda: _answers(f"{http_url}/health", verify),
                # Stopped with the agent hosts: neither needs the other to stop.
                stop_group="edge",
            )
        )
        for name in host_names:
            await sup.start(
                ChildSpec(
                    name=name,
                    argv=[python, "-m", "cortex.host"],
                    env={
                        **env,
                        **role_env(keys, "host"),
                        **secrets,
                        "CORTEX_HOST_NAME": name,
                    },
                    stop_group="edge",
                )
            )
        await _wait_until_ready(http_url, stop, verify)
        if not stop.is_set():
            await targets.start()
    except (UpError, RuntimeError, NatsServerNotFound) as exc:
        print(f"cortex up: {exc}", file=sys.stderr, flush=True)
        await sup.stop()
        return 1

    if not stop.is_set():
        sup.say(
            banner(
                settings,
                data_dir=data_dir,
                http_url=http_url,
                nats_url=nats_url,
                token=token,
                token_source=token_source,
                services=services,
                hosts=hosts,
                nats_nodes=len(nats_configs),
            )
        )
        await stop.wait()
    sup.say("cortex up: stopping (agent hosts and gateway, services, then NATS)...")
    await targets.stop()
    await sup.stop()
    sup.say("cortex up: stopped")
    return 0


async def start_nats_servers(
    sup: Supervisor,
    configs: list[NatsServerConfig],
    data_dir: Path,
    tls: ssl.SSLContext | None = None,
    nkey: str = "",
) -> None:
    """Start nats-server (`nats`) or the nodes of a cluster (`nats-1` ...), and wait until
    JetStream can make the platform's streams: on a cluster, once it has a meta leader that
    knows every node."""
    for n, conf in enumerate(configs):
        await sup.start(
            ChildSpec(
                name="nats" if len(configs) == 1 else f"nats-{n + 1}",
                argv=conf.argv(conf.write(conf.store_dir / "nats.conf")),
                # Only the port: a node's JetStream waits for the nodes started after it.
                ready=functools.partial(tcp_open, conf.host, conf.port),
                stop_group="nats",
            )
        )
    try:
        await wait_for_jetstream(
            [conf.url for conf in configs], JETSTREAM_TIMEOUT, tls=tls, nkey=nkey or None
        )
    except JetStreamNotReady as exc:
        raise UpError(f"{exc}; see the nats logs in {data_dir / 'logs'}") from None


CLUSTER_CHATTER = (
    "Error trying to connect to route",
    "Waiting for routing to be established",
    "has not established contact with a meta leader",
    "Metalayer blocking snapshot",
    "store is closed",
)
"""What the nodes of a cluster say while they or their peers start, restart or stop: expected,
so only in their log files (the supervisor reports a node that exits)."""


def echo_line(child: str, line: str) -> bool:
    """What reaches the terminal: everything the platform's processes log, but only
    nats-server's warnings and errors (its full log is in the data dir's logs/nats*.log)."""
    if child != "nats" and not child.startswith("nats-"):
        return True
    return any(level in line for level in ("[WRN]", "[ERR]", "[FTL]")) and not any(
        chatter in line for chatter in CLUSTER_CHATTER
    )


async def _answers(url: str, verify: ssl.SSLContext | bool) -> bool:
    async with httpx.AsyncClient(timeout=1.0, verify=verify) as client:
        return (await client.get(url)).status_code == 200


async def _wait_until_ready(
    http_url: str, stop: asyncio.Event, verify: ssl.SSLContext | bool, timeout: float = 90.0
) -> None:
    """Until the gateway's `/ready` says every service and agent host started is there (it
    was told which), so the banner means ready."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    checks: dict[str, bool] = {}
    async with httpx.AsyncClient(timeout=3.0, verify=verify) as client:
        while loop.time() < deadline and not stop.is_set():
            with contextlib.suppress(httpx.HTTPError, ValueError):
                reply = await client.get(f"{http_url}/ready")
                if reply.status_code == 200:
                    return
                checks = reply.json().get("checks", {})
            await asyncio.sleep(0.1)
    if not stop.is_set():
        waiting = ", ".join(name for name, ok in checks.items() if not ok) or "the gateway"
        raise UpError(
            f"the platform was not ready within {timeout:g}s (still waiting for: {waiting}); "
            "see the logs under the data dir"
        )


async def prepare_streams(settings: Settings) -> None:
    """Create the platform's streams before any service does, so that a stream JetStream
    cannot make is reported once, here, rather than as services failing to start."""
    url = redact_url(settings.effective_nats_url)
    try:
        nc = await connect(settings, "cortex-up", first_connect_timeout=NATS_CONNECT_TIMEOUT)
    except Exception as exc:
        raise UpError(f"cannot reach NATS at {url}: {exc or type(exc).__name__}") from None
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings.subjects())
        await ensure_buckets(js, settings.subjects())
    except (StreamStorageError, StreamReplicasError) as exc:
        raise UpError(str(exc)) from None
    finally:
        await nc.close()


class Interrupts:
    """When a stop signal means "kill now". A process group's signal often arrives twice at
    once (make, for one, forwards what the whole group already got), so a second signal soon
    after the first is the same request; a third, or one after the window, is insistence."""

    WINDOW = 5.0

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._first: float | None = None
        self._count = 0

    def escalates(self) -> bool:
        now = self._clock()
        self._count += 1
        if self._first is None:
            self._first = now
            return False
        return self._count >= 3 or now - self._first > self.WINDOW


def activation() -> list[str]:
    """How to get this `cortex` on a shell's path, when it is not there already."""
    bin_dir = Path(sys.executable).parent
    found = shutil.which("cortex")
    script = bin_dir / "activate"
    if (found and Path(found).parent == bin_dir) or not script.exists():
        return []
    with contextlib.suppress(ValueError):
        script = script.relative_to(Path.cwd())
    return [f"  . {script}    # puts `cortex` on the path of this shell"]


def banner(
    settings: Settings,
    *,
    data_dir: Path,
    http_url: str,
    nats_url: str,
    token: str,
    token_source: str,
    services: list[str],
    hosts: int,
    nats_nodes: int,
) -> str:
    """`nats_nodes`: how many nats-servers `cortex up` started (0: an external NATS)."""
    token_file = data_dir / "admin.token"
    store = redact_url(settings.store) if settings.store else f"sqlite:///{data_dir / 'store'}"
    urls = ", ".join(redact_url(url.strip()) for url in nats_url.split(","))
    if nats_nodes > 1:
        first_route = settings.nats_port + CLUSTER_PORT_OFFSET
        kind = f"embedded {nats_nodes}-node nats-server cluster, JetStream"
        kind += f"; routes on ports {first_route}-{first_route + nats_nodes - 1}"
    else:
        kind = "embedded nats-server, JetStream" if nats_nodes else "external"
    nats_lines = [f"  NATS         {urls}   ({kind})"]
    if nats_nodes:
        nats_lines.append(
            f"               users: an NKey per role in {data_dir / 'nats' / 'auth'} "
            "(publisher.nk may only send messages)"
        )
    if settings.nats_replicas > 1:
        nats_lines.append(f"               every stream with {settings.nats_replicas} replicas")
    each = f" ({settings.replicas} replicas each)" if settings.replicas > 1 else ""
    listed = f"{', '.join(services)}{each}, gateway" if services else "gateway"
    lines = [
        "",
        f"CodeValdCortex {__version__} is up.",
        "",
        f"  dashboard    {http_url}/   (sign in with the admin token)",
        f"  API          {http_url}/api/v1   (OpenAPI: {http_url}/api/v1/openapi.json)",
        f"  admin token  {token}",
        f"               {token_source}",
        *nats_lines,
        f"  event store  {store}",
        f"  services     {listed}" + (f"; {hosts} agent host(s)" if hosts else ""),
        f"  data dir     {data_dir}   (logs in {data_dir / 'logs'})",
        f"  metrics      prometheus --config.file={config_path(data_dir)}   "
        "(docs/observability.md)",
        "",
        "Try, in another terminal:",
        f"  curl {http_url}/api/v1/health",
        f'  curl -H "Authorization: Bearer $(cat {token_file})" {http_url}/api/v1/status',
        *activation(),
        "  cortex status",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
