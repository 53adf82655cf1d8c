"""One settings object for every process, read from `CORTEX_*` environment variables.

Defaults make `cortex up` work with nothing set. Secrets (tokens, store credentials) come only
from the environment or files and never appear in `hidden()` or `redacted()`, which is what is
shown (`GET /api/v1/settings`) and logged.
"""

from __future__ import annotations

import os
import re
import shutil
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from cortex.contracts.subjects import Subjects

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]
SubjectPrefix = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")]

ENV_PREFIX = "CORTEX_"


class SettingsError(ValueError):
    """A `CORTEX_*` variable has a value the platform cannot use; the message names it."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    data_dir: str = ".cortex"
    """Where `cortex up` keeps the NATS store, the event stores and the admin token."""
    nats_url: str = ""
    """An existing NATS to use (`,`-separated URLs of a cluster's servers). Empty: `cortex up`
    starts nats-server on `nats_port`."""
    nats_port: Port = 4222
    nats_monitor_port: Port = 8222
    nats_prefix: str = "cortex"
    """Root token of every subject and stream; a second prefix is a separate platform."""
    nats_creds: str = ""
    """Path of a NATS credentials file, if the server asks for one."""
    nats_nkey: str = ""
    """Path of an NKey seed file this process signs in to NATS with. `cortex up` gives each
    process its role's seed (`<data_dir>/nats/auth/<role>.nk`, docs/security.md)."""
    nats_inbox_prefix: SubjectPrefix = "_INBOX"
    """Where this process's request replies come (`<prefix>.<unique>`): NATS permissions let
    each role read only its own. `cortex up` sets `_CORTEX.<role>`."""
    nats_tls_cert: str = ""
    """PEM certificate (with its chain) the nats-servers `cortex up` starts serve TLS with,
    together with `nats_tls_key`: clients must then connect with TLS."""
    nats_tls_key: str = ""
    """PEM private key of `nats_tls_cert`."""
    nats_tls_ca: str = ""
    """PEM CA certificates every platform process trusts for NATS's certificate besides the
    system's. Set (or `nats_tls_cert` set): every connection to NATS uses TLS."""
    events_days: Annotated[float, msgspec.Meta(gt=0, le=3650)] = 7.0
    """Days the stream `CORTEX_EVENTS` keeps each domain event: how far back `GET /api/v1/events`
    resumes and `GET /api/v1/audit` reaches. The event stores keep every event regardless."""
    nats_replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    """Replicas of every stream, key-value bucket and object store (3 on a three-node cluster).
    `cortex up` with `nats_cluster` 3 sets it to 3."""
    nats_cluster: Literal[1, 3] = 1
    """nats-servers `cortex up` starts: 1, or a three-node cluster (ports `nats_port` and the
    two after it)."""
    replicas: Annotated[int, msgspec.Meta(ge=1, le=8)] = 1
    """Replicas of every domain service that `cortex up` starts."""
    lease_ttl: Seconds = 5.0
    """Seconds a replica's hold on work done once (the relay, the reconciler, the registry's
    health clock) lasts without renewal: how soon another replica takes over a dead one's."""
    catch_up_interval: Seconds = 1.0
    """Longest a replica's read models go without looking for other replicas' events; appends
    prompt them at once, this bounds a missed prompt."""
    store: str = ""
    """Event store URL: `sqlite:///dir` (a file per service) or `arangodb://user:pw@host:8529/db`.
    Empty: `sqlite:///<data_dir>/store`."""
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    """FULL survives power loss; NORMAL survives a process crash and appends faster."""
    http_host: str = "127.0.0.1"
    http_port: Port = 8080
    tls_cert: str = ""
    """PEM certificate (with its chain) the gateway serves HTTPS with, together with
    `tls_key`. Empty: plain HTTP."""
    tls_key: str = ""
    """PEM private key of `tls_cert`."""
    tls_ca: str = ""
    """PEM CA certificates that `cortex up` and the CLI trust for the gateway's certificate,
    besides the system's (for a private CA)."""
    admin_host: str = "127.0.0.1"
    admin_port: Port = 0
    """Port of this process's `/health`, `/ready`, `/metrics`; 0 picks a free one."""
    metrics_per_agent: bool = False
    """Metrics with an `agent` label get a series per agent (its id) instead of one per
    template: worth it for a few agents, thousands of series at 10,000."""
    nats_monitor_urls: str = ""
    """Monitoring URLs (`,`-separated, `http://host:8222`) of every nats-server: the gateway
    serves their figures as Prometheus metrics on its admin port's `/metrics/nats`. Empty:
    not served. `cortex up` sets it for the servers it starts."""
    secrets_key: str = ""
    """Key file that seals and opens secret config values (fields a template's config schema
    marks `writeOnly`), read by the lifecycle service and the agent hosts only. `cortex up`
    makes `<data_dir>/secrets.key` (mode 0600). Empty: secret values are refused."""
    admin_token: str = ""
    tokens_file: str = ""
    """API tokens besides the admin token. Empty: `<data_dir>/tokens.json`."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_publish: bool = True
    """Publish every log line to the stream `CORTEX_LOGS` (`cortex.log.<service>.<level>`),
    where `GET /api/v1/logs` and `cortex logs` find it; false: the process's output only."""
    otlp_endpoint: str = ""
    """Base URL of an OTLP/HTTP collector (`http://localhost:4318`): every process sends its
    trace spans to `<url>/v1/traces`. Empty: no spans are recorded or sent."""
    rate_limit: Annotated[float, msgspec.Meta(ge=0)] = 100.0
    """Requests a second each API token may make through one gateway replica (429 with
    `Retry-After` beyond); 0: no limit."""
    rate_burst: Annotated[int, msgspec.Meta(ge=1)] = 200
    """Requests a token may make at once before `rate_limit` applies."""
    request_timeout: Seconds = 5.0
    """How long the gateway and the CLI wait for a service's reply."""
    shutdown_grace: Seconds = 10.0
    """How long a stopping process lets in-flight work finish."""
    heartbeat_interval: Seconds = 2.0
    """How often agent hosts report; the registry's health clock ticks with it."""
    unhealthy_after: Annotated[int, msgspec.Meta(ge=1)] = 3
    """Missed heartbeats before a host or instance is `unhealthy`."""
    gone_after: Annotated[int, msgspec.Meta(ge=2)] = 8
    """Missed heartbeats before it is `gone` (and its replicas are replaced elsewhere)."""
    start_failures: Annotated[int, msgspec.Meta(ge=1)] = 5
    """Failed starts in a row (with backoff 1 s, 2 s, 4 s ...) before an agent is `failed`."""
    reconcile_interval: Seconds = 2.0
    """How often the lifecycle service compares desired and actual replicas."""
    ack_wait: Seconds = 30.0
    """Seconds a delivered message may go without word from its handler before JetStream
    delivers it again; hosts keep long handlers alive with in-progress acks."""
    inbox_partitions: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    """Partitions of the agent inboxes (one JetStream consumer each). Fixed at install."""
    http_step_allow: str = ""
    """Internal addresses workflow `http` steps may reach (`,`-separated CIDRs, addresses and
    host names, `*.` for subdomains, each optionally with `:port`). Without an entry, loopback,
    link-local, private and unique-local addresses are refused; an entry without a port still
    refuses the platform's own ports there. See docs/security.md."""
    http_step_max_bytes: Annotated[int, msgspec.Meta(ge=1)] = 1024 * 1024
    """Most bytes of a response body an `http` step reads; a bigger one fails `too_large`."""
    host_name: str = ""
    """An agent host's id (a DNS label); empty: `<hostname>-<pid>`."""
    host_capacity: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Most replicas an agent host takes; 0: no limit."""
    host_replica: str = ""
    """A JSON file with the one replica (`ReplicaSpec`) this host runs, under the host's name,
    from the moment it starts; the host ends if the replica cannot start. The `kubernetes`
    driver's pods are such hosts (docs/kubernetes.md). Empty: replicas come from the lifecycle."""
    host_secret_values: str = ""
    """With `host_replica`: the replica's secret config values, a JSON list of `[path,
    value]`, put into its config (the pod reads them from a Secret)."""
    kubernetes_namespace: str = ""
    """Namespace where the lifecycle service runs agents of runtime `kubernetes` as pods.
    Empty: no `kubernetes` driver, and such agents cannot deploy."""
    kubernetes_config: str = ""
    """A kubeconfig file for the `kubernetes` driver; empty: the pod's service account."""
    kubernetes_service_account: str = "cortex-agent"
    """Service account of the agents' pods (in `kubernetes_namespace`)."""
    kubernetes_env_config_map: str = "cortex-agent-env"
    """ConfigMap in `kubernetes_namespace` whose keys are every agent pod's environment:
    NATS's URL, the subject prefix and the like (the chart makes it)."""
    kubernetes_nkey_secret: str = ""
    """Secret in `kubernetes_namespace` holding `host.nk`, the NATS seed of the agents' pods;
    empty: the pods sign in without one."""
    kubernetes_nats_ca_secret: str = ""
    """Secret in `kubernetes_namespace` holding `ca.crt`, the CA the agents' pods trust for
    NATS's TLS certificate; empty: the image's trusted CAs only."""
    agent_path: str = ""
    """Extra import paths (`:`-separated) where agent hosts find agent classes; a template
    may name a handler in a module under one of them."""
    agent_modules: str = ""
    """Module prefixes (`,`-separated, such as `mycompany.agents`) a template's handler may
    also come from: installed packages, or code the lifecycle service cannot see on disk."""
    logs_max_bytes: Annotated[int, msgspec.Meta(ge=0)] = 0
    """Size limit of the log stream, which JetStream reserves on its disk when the stream is
    created. 0: a tenth of the data dir's free disk, rounded down to a power of two, between
    16 MiB and 1 GiB."""
    metrics_history_interval: Seconds = 10.0
    """How often the gateway samples the platform's figures for `GET /api/v1/metrics/history`
    (an hour of them is kept) when `prometheus_url` is empty."""
    prometheus_url: str = ""
    """A Prometheus that scrapes this platform (`http://prometheus:9090`): the metrics history
    is read from it instead of being sampled by the gateway."""
    dashboard_dir: str = ""
    """Folder of the built web dashboard (`index.html` and `assets/`), served by the gateway at
    `/`. Empty: `services/dashboard/dist` of the source tree."""
    ready_services: str = ""
    """Services (`,`-separated) the gateway's `/ready` waits for; `cortex up` sets it."""
    ready_hosts: str = ""
    """Agent hosts (`,`-separated ids) the gateway's `/ready` waits to see registered;
    `cortex up` sets it."""

    @property
    def http_url(self) -> str:
        """Where the gateway answers, as a local client reaches it."""
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::") else self.http_host
        return f"{'https' if self.tls_cert else 'http'}://{host}:{self.http_port}"

    def tls_verify(self) -> ssl.SSLContext | bool:
        """What a client of the gateway verifies its certificate with: the system's CAs, and
        `tls_ca` when set."""
        if not self.tls_ca:
            return True
        context = ssl.create_default_context()
        context.load_verify_locations(self.tls_ca)
        return context

    def nats_tls(self) -> ssl.SSLContext | None:
        """The TLS a connection to NATS uses; None: plain."""
        if not (self.nats_tls_ca or self.nats_tls_cert):
            return None
        return ssl.create_default_context(cafile=self.nats_tls_ca or None)

    def subjects(self) -> Subjects:
        return Subjects(
            self.nats_prefix,
            self.inbox_partitions,
            self.effective_logs_max_bytes,
            stream_replicas=self.nats_replicas,
            events_max_age=self.events_days * 86_400.0,
        )

    @property
    def effective_logs_max_bytes(self) -> int:
        return self.logs_max_bytes or logs_size_for(self.data_path)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def effective_nats_url(self) -> str:
        return self.nats_url or f"nats://127.0.0.1:{self.nats_port}"

    @property
    def nats_servers(self) -> list[str]:
        """The NATS URLs to connect to: every server of a cluster, any of which will do."""
        return [u.strip() for u in self.effective_nats_url.split(",") if u.strip()]

    @property
    def effective_store(self) -> str:
        return self.store or f"sqlite:///{(self.data_path / 'store').resolve()}"

    @property
    def effective_tokens_file(self) -> Path:
        return Path(self.tokens_file) if self.tokens_file else self.data_path / "tokens.json"

    @property
    def admin_token_file(self) -> Path:
        return self.data_path / "admin.token"

    def hidden(self) -> Settings:
        """These settings with their secrets hidden: tokens, URL passwords, an agent pod's
        secret config values."""
        return msgspec.structs.replace(
            self,
            admin_token="***" if self.admin_token else "",
            host_secret_values="***" if self.host_secret_values else "",
            store=redact_url(self.store),
            nats_url=redact_url(self.nats_url),
        )

    def redacted(self) -> dict[str, object]:
        """The settings as they may be logged."""
        return dict(msgspec.to_builtins(self.hidden()))


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read `CORTEX_*` variables; `overrides` (already typed) win over the environment."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX)
        and key[len(ENV_PREFIX) :].lower() in Settings.__struct_fields__
    }
    raw.update(overrides)
    if isinstance(raw.get("log_level"), str):
        raw["log_level"] = str(raw["log_level"]).lower()
    if isinstance(raw.get("sqlite_synchronous"), str):
        raw["sqlite_synchronous"] = str(raw["sqlite_synchronous"]).upper()
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).rpartition(" - at `$.")
        name = ENV_PREFIX + path.rstrip("`").upper() if path else "CORTEX_*"
        raise SettingsError(f"{name}: {message or exc}") from None
    for cert, key in (("tls_cert", "tls_key"), ("nats_tls_cert", "nats_tls_key")):
        if bool(getattr(settings, cert)) != bool(getattr(settings, key)):
            raise SettingsError(
                f"{ENV_PREFIX}{cert.upper()} and {ENV_PREFIX}{key.upper()} go together: set "
                "both or neither"
            )
    for name in (
        "tls_cert",
        "tls_key",
        "tls_ca",
        "nats_tls_cert",
        "nats_tls_key",
        "nats_tls_ca",
        "nats_creds",
        "nats_nkey",
        "secrets_key",
    ):
        path = getattr(settings, name)
        if path and not Path(path).is_file():
            raise SettingsError(f"{ENV_PREFIX}{name.upper()}: no file {path}")
    return settings


MIN_LOGS_BYTES = 16 << 20
MAX_LOGS_BYTES = 1 << 30


def logs_size_for(data_dir: Path) -> int:
    """The default log stream size for a data dir's disk. A power of two, so the figure stays
    put as the free space moves (a changed limit would update the stream at every start)."""
    folder = data_dir.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    tenth = shutil.disk_usage(folder).free // 10
    size = MIN_LOGS_BYTES
    while size * 2 <= min(tenth, MAX_LOGS_BYTES):
        size *= 2
    return size


_CREDENTIALS = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/]*):[^@/]*@")


def redact_url(url: str) -> str:
    """`arangodb://root:secret@db:8529/cortex` -> `arangodb://root:***@db:8529/cortex`. Only
    the password changes, so a list of hosts or an IPv6 address (`[::1]`) reads as given."""
    return _CREDENTIALS.sub(r"\g<head>:***@", url, count=1)
