"""`python -m cortex.workflow`."""

from __future__ import annotations

import sys

from cortex.kernel.logging import configure_logging
from cortex.kernel.service.runtime import run_service
from cortex.kernel.settings import SettingsError, load_settings
from cortex.workflow.egress import parse_allow
from cortex.workflow.service import build


def main() -> None:
    try:
        settings = load_settings()
        parse_allow(settings.http_step_allow)
    except (SettingsError, ValueError) as exc:
        print(f"cortex workflow: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(
        "workflow", settings.log_level, settings.log_format, publish=settings.log_publish
    )
    run_service(build(settings))


if __name__ == "__main__":
    main()
