"""`cortex up` run as a user runs it, in a temporary data dir, on free ports."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
import nats
from nats.aio.client import Client as NATS

from cortex.embedded.nats_auth import roles
from cortex.embedded.supervisor import CHILD_NAME_VAR, die_with_parent
from cortex.embedded.up import CLUSTER_PORT_OFFSET
from cortex.kernel.settings import load_settings
from tests.support.ports import free_port, port_open

CORTEX = str(Path(sys.executable).parent / "cortex")
ADMIN_TOKEN = "cxt_test_admin_token"


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


FAST_HEALTH = {
    "CORTEX_HEARTBEAT_INTERVAL": "0.5",
    "CORTEX_UNHEALTHY_AFTER": "2",
    "CORTEX_GONE_AFTER": "6",
    "CORTEX_RECONCILE_INTERVAL": "0.5",
    "CORTEX_START_FAILURES": "3",
    "CORTEX_LEASE_TTL": "2",
}
"""Health clocks fast enough for tests: unhealthy after 1 s, gone after 3 s; work done once
moves to another replica within 2 s of its holder's death."""


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def free_nats_ports(nodes: int) -> int:
    """A client port for the first of `nodes` nats-servers such that the ports `cortex up`
    derives from it (the next client ports, and each + CLUSTER_PORT_OFFSET for routes) are free
    too."""
    while True:
        port = free_port()
        derived = [port + n for n in range(1, nodes)]
        if nodes > 1:
            derived += [port + n + CLUSTER_PORT_OFFSET for n in range(nodes)]
        if not any(port_open(p) for p in derived):
            return port


TEST_AGENT_MODULES = "tests.support"
"""Where the suite's agent classes live (`tests.support.sample_agents` and the like)."""

TOPOLOGIES = {
    "": {},
    "replicated": {"CORTEX_REPLICAS": "2", "CORTEX_NATS_CLUSTER": "3"},
}
"""What `CORTEX_TEST_TOPOLOGY` makes of every stack a test starts without saying otherwise:
`replicated` is the production shape on one machine, two replicas of each service on a
three-node NATS cluster (`make test` runs some end-to-end modules that way too)."""


class Stack:
    started: ClassVar[set[Stack]] = set()
    """Stacks running now: the session stops whatever a failed test left running."""

    def __init__(self, root: Path, **env: str) -> None:
        """`env` goes to `cortex up` as it is: `CORTEX_NATS_CLUSTER="3"` for a three-node NATS
        cluster (`nats-1` ... `nats-3`), `CORTEX_REPLICAS="2"` for two processes of each
        service (`registry-1`, `registry-2`, ...)."""
        topology = os.environ.get("CORTEX_TEST_TOPOLOGY", "")
        if topology not in TOPOLOGIES:
            raise ValueError(f"CORTEX_TEST_TOPOLOGY={topology!r}: one of {sorted(TOPOLOGIES)}")
        env = {**TOPOLOGIES[topology], **env}
        self.root = root
        self.data_dir = root / "data"
        self.http_port = free_port()
        nodes = int(env.get("CORTEX_NATS_CLUSTER", "1"))
        self.nats_port = free_nats_ports(nodes)
        self.nats_ports = [self.nats_port + n for n in range(nodes)]
        """Client ports of the nats-servers (`nats_port` is the first)."""
        self.out_path = root / "up.out"
        self.env = {
            **os.environ,
            "CORTEX_DATA_DIR": str(self.data_dir),
            "CORTEX_HTTP_PORT": str(self.http_port),
            "CORTEX_NATS_PORT": str(self.nats_port),
            "CORTEX_NATS_MONITOR_PORT": "0",
            "CORTEX_ADMIN_TOKEN": ADMIN_TOKEN,
            "CORTEX_SQLITE_SYNCHRONOUS": "NORMAL",
            "CORTEX_SHUTDOWN_GRACE": "5",
            # The tests' sample agents, wherever CORTEX_AGENT_PATH points.
            "CORTEX_AGENT_MODULES": TEST_AGENT_MODULES,
            **env,
        }
        self.env.pop("CORTEX_NATS_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.expect_violations = False
        """Set by a test that breaks NATS permissions on purpose; otherwise `stop` fails on
        any violation in the nats-server logs: a role lacks a permission its work needs."""

    @property
    def url(self) -> str:
        scheme = "https" if self.env.get("CORTEX_TLS_CERT") else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def nats_url(self) -> str:
        """Every nats-server's URL, as CORTEX_NATS_URL takes them."""
        return ",".join(f"nats://127.0.0.1:{port}" for port in self.nats_ports)

    def nats_seed(self, role: str = "admin") -> str:
        """The NKey seed `cortex up` made for `role` (docs/security.md)."""
        return str(self.data_dir / "nats" / "auth" / f"{role}.nk")

    def role_env(self, role: str) -> dict[str, str]:
        """What a process started outside `cortex up` needs to sign in to NATS as `role`."""
        (found,) = (r for r in roles(load_settings({}).subjects()) if r.name == role)
        return {
            "CORTEX_NATS_URL": self.nats_url,
            "CORTEX_NATS_NKEY": self.nats_seed(role),
            "CORTEX_NATS_INBOX_PREFIX": found.inbox_prefix or "_INBOX",
        }

    async def nats_connect(self, role: str = "admin", **options: Any) -> NATS:
        """A NATS connection to every server, signed in as `role` (with its inbox)."""
        options.setdefault("inbox_prefix", self.role_env(role)["CORTEX_NATS_INBOX_PREFIX"])
        return await nats.connect(
            servers=self.nats_url.split(","), nkeys_seed=self.nats_seed(role), **options
        )

    def permission_violations(self) -> list[str]:
        logs = self.data_dir / "logs"
        return [
            line
            for log in sorted(logs.glob("nats*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if "Violation" in line
        ]

    @property
    def output(self) -> str:
        return self.out_path.read_text() if self.out_path.exists() else ""

    def start(self, timeout: float = 90.0) -> Stack:
        self.root.mkdir(parents=True, exist_ok=True)
        out = self.out_path.open("ab")
        seen = len(self.output)  # a restart appends to the same file
        self.proc = subprocess.Popen(
            [CORTEX, "up"],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            # Even a killed test run leaves no platform behind. The function only makes one
            # system call, through a library loaded before the fork.
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
        Stack.started.add(self)
        deadline = time.monotonic() + timeout
        while "is up." not in self.output[seen:]:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cortex up exited with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"cortex up not ready in {timeout}s:\n{self.output[-5000:]}")
            time.sleep(0.1)
        return self

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        ca = self.env.get("CORTEX_TLS_CA")
        verify = ssl.create_default_context(cafile=ca) if ca else True
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=verify)

    def child_pid(self, marker: str, **env: str) -> int:
        """The child whose command line holds `marker` (and whose environment has `env`)."""
        assert self.proc is not None
        for pid in descendants(self.proc.pid):
            if marker in cmdline(pid) and all(environ(pid).get(k) == v for k, v in env.items()):
                return pid
        raise LookupError(f"no child of cortex up runs {marker!r} with {env}")

    def pid_of(self, name: str) -> int:
        """The child that `cortex up` supervises as `name` (`nats-2`, `registry-1`, `host-1`:
        the name of its log file)."""
        assert self.proc is not None
        for pid in descendants(self.proc.pid):
            if environ(pid).get(CHILD_NAME_VAR) == name:
                return pid
        raise LookupError(f"cortex up supervises no child named {name!r}")

    def kill(self, name: str) -> int:
        """SIGKILL the child supervised as `name` (what a crash looks like); its pid."""
        pid = self.pid_of(name)
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self, timeout: float = 60.0) -> int:
        Stack.started.discard(self)
        if self.proc is None or self.proc.poll() is not None:
            code = self.proc.returncode if self.proc else 0
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for pid in descendants(self.proc.pid):
                    os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                raise
        violations = [] if self.expect_violations else self.permission_violations()
        assert not violations, "NATS refused a platform process:\n" + "\n".join(violations[:20])
        return code
