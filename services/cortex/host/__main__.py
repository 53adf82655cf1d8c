"""`python -m cortex.host` (also `cortex host`): one agent host."""

from __future__ import annotations

import sys

from cortex.host.dedicated import DedicatedReplicaError
from cortex.host.service import build
from cortex.kernel.logging import configure_logging
from cortex.kernel.service.runtime import run_service
from cortex.kernel.settings import SettingsError, load_settings


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cortex host: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("host", settings.log_level, settings.log_format, publish=settings.log_publish)
    try:
        run_service(build(settings))
    except DedicatedReplicaError as exc:
        print(f"cortex host: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
