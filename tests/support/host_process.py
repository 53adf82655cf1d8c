"""A real agent host process (`python -m cortex.host`) on a test's NATS and data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cortex.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


class HostProcess:
    def __init__(self, settings: Settings, name: str, **env: str) -> None:
        self.name = name
        self.env = {
            **os.environ,
            "CORTEX_NATS_URL": settings.nats_url,
            "CORTEX_NATS_PREFIX": settings.nats_prefix,
            "CORTEX_DATA_DIR": settings.data_dir,
            "CORTEX_HOST_NAME": name,
            "CORTEX_AGENT_MODULES": settings.agent_modules,
            "CORTEX_AGENT_PATH": str(ROOT),
            "CORTEX_LOG_PUBLISH": "false",
            "CORTEX_ADMIN_PORT": "0",
            "CORTEX_HEARTBEAT_INTERVAL": f"{settings.heartbeat_interval:g}",
            **env,
        }
        self.log = Path(settings.data_dir) / f"host-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cortex.host"],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def exited(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
