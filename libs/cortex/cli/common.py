"""What every command shares: settings, the gateway client, the error wrapper, `--json`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import quote

import click

from cortex.cli.client import CliError, GatewayClient, default_token, default_url
from cortex.kernel.errors import CortexError
from cortex.kernel.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise CliError(str(exc), exit_code=2) from None


def friendly(fn: F) -> F:
    """Errors end as one `error:` line and an exit status, never a traceback."""

    @wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except CortexError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)

    return cast(F, run)


def gateway(timeout: float = 30.0) -> GatewayClient:
    settings = settings_or_exit()
    token, source = default_token(settings)
    return GatewayClient(
        default_url(settings), token, source, timeout=timeout, verify=settings.tls_verify()
    )


def json_option(fn: F) -> F:
    """`--json`: the gateway's answer as it came, for scripts (`jq`) instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")(fn)


def segment(ref: str) -> str:
    """A user-given id or name as one URL path segment: `/` or `?` in it must not re-route."""
    return quote(ref, safe="")
