"""What every benchmark shares: `cortex up` in a temporary data dir, and small helpers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from cortex.embedded.up import CLUSTER_PORT_OFFSET

TOKEN = "cxt_bench"
CORTEX = str(Path(sys.executable).parent / "cortex")
BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_nats_port(nodes: int) -> int:
    """A first client port for `nodes` nats-servers whose derived ports (the next client ports
    and, for a cluster, each + CLUSTER_PORT_OFFSET for its routes) are free too."""
    while True:
        port = free_port()
        derived = [port + n for n in range(1, nodes)]
        if nodes > 1:
            derived += [port + n + CLUSTER_PORT_OFFSET for n in range(nodes)]
        if all(p <= 65535 and is_free(p) for p in derived):
            return port


def pct(values: list[float], q: float) -> float:
    """The q-quantile of seconds, in milliseconds."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def rss_of(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def child_running(pid: int, marker: str) -> int:
    """A direct child of `pid` whose command line holds `marker`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid and marker in cmdline:
            return int(entry.name)
    raise LookupError(marker)


class Platform:
    """`cortex up` with `hosts` agent hosts, agent classes from bench/, on free ports; on one
    nats-server, or on a cluster of `nats_cluster` (CORTEX_NATS_CLUSTER)."""

    def __init__(self, hosts: int = 1, nats_cluster: int = 1, **env: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cortex-bench-"))
        self.http_port, self.nats_port = free_port(), free_nats_port(nats_cluster)
        self.nats_urls = [f"nats://127.0.0.1:{self.nats_port + n}" for n in range(nats_cluster)]
        """Every nats-server's client URL."""
        self.nats_seed = str(self.root / "data" / "nats" / "auth" / "admin.nk")
        """`cortex up`'s admin NKey: what the benchmarks sign in to NATS with."""
        full = {
            **os.environ,
            "CORTEX_DATA_DIR": str(self.root / "data"),
            "CORTEX_HTTP_PORT": str(self.http_port),
            "CORTEX_NATS_PORT": str(self.nats_port),
            "CORTEX_NATS_CLUSTER": str(nats_cluster),
            "CORTEX_NATS_MONITOR_PORT": "0",
            "CORTEX_ADMIN_TOKEN": TOKEN,
            "CORTEX_HOSTS": str(hosts),
            "CORTEX_LOG_LEVEL": "warning",
            "CORTEX_AGENT_PATH": str(BENCH),
            "CORTEX_REQUEST_TIMEOUT": "60",
            # The benchmarks measure what the platform can take, not the per-token limit.
            "CORTEX_RATE_LIMIT": "0",
            **env,
        }
        full.pop("CORTEX_NATS_URL", None)
        log = self.root / "up.log"
        self.up = subprocess.Popen(
            [CORTEX, "up"], env=full, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 90
        while "is up." not in log.read_text():
            if self.up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-3000:])
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def nats_connect(self) -> NATS:
        return await nats.connect(self.nats_urls, nkeys_seed=self.nats_seed)

    def child(self, marker: str) -> int:
        return child_running(self.up.pid, marker)

    def stop(self) -> None:
        self.up.send_signal(signal.SIGTERM)
        try:
            self.up.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.up.kill()
