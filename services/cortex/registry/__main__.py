"""`python -m cortex.registry`: the registry service, until SIGTERM or SIGINT."""

from __future__ import annotations

import sys

from cortex.kernel.logging import configure_logging
from cortex.kernel.service.runtime import run_service
from cortex.kernel.settings import SettingsError, load_settings
from cortex.registry.service import build


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cortex registry: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(
        "registry", settings.log_level, settings.log_format, publish=settings.log_publish
    )
    try:
        run_service(build(settings))
    except OSError as exc:
        print(f"cortex registry: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
