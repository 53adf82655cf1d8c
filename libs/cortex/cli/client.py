"""The CLI's HTTP client for the gateway, with errors a person can act on."""

from __future__ import annotations

import os
import ssl
import time
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx

from cortex.cli.sse import ServerSentEvent, parse_events
from cortex.kernel.settings import Settings

STREAM_READ_TIMEOUT = 45.0
"""Seconds a live stream may stay silent: three of the gateway's 15 s keep-alives missed."""

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRY_PAUSES = (0.5, 2.0)
"""Seconds before sending a change again, with its key, after a timeout or a 503/504."""
RETRY_STATUSES = frozenset({503, 504})
RATE_RETRIES = 3
"""Times a request refused with 429 (the token's rate limit) is sent again."""
MAX_RATE_WAIT = 10.0
"""Longest pause before that, whatever `Retry-After` says."""
"""`unavailable` and `timeout`: the change may or may not have been made."""


class CliError(Exception):
    """Printed as `error: ...` and exits with status 1 (2 for usage errors)."""

    def __init__(
        self,
        message: str,
        exit_code: int = 1,
        *,
        status: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status
        """The HTTP status of the gateway's answer, when the error is one."""
        self.details = details or {}
        """The problem document's machine-readable `details` (e.g. `current_version`)."""


class GatewayUnreachable(CliError):
    """No answer at all, or a connection that broke: worth another try, unlike an answer."""


def default_url(settings: Settings) -> str:
    if os.environ.get("CORTEX_URL"):
        return os.environ["CORTEX_URL"].rstrip("/")
    return settings.http_url


def default_token(settings: Settings) -> tuple[str, str]:
    """The token and where it came from, for messages: CORTEX_TOKEN, then the data dir."""
    if os.environ.get("CORTEX_TOKEN"):
        return os.environ["CORTEX_TOKEN"], "CORTEX_TOKEN"
    if settings.admin_token:
        return settings.admin_token, "CORTEX_ADMIN_TOKEN"
    path: Path = settings.admin_token_file
    if path.exists():
        return path.read_text().strip(), str(path)
    return "", ""


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        token_source: str,
        timeout: float = 30.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url
        self._token_source = token_source
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, verify=verify
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.exchange(method, path, **kwargs)[1]

    def exchange(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """The HTTP status with the body, where the status says more than the body does (200
        "unchanged" against 201 "created").

        A change carries a fresh `Idempotency-Key` and, after a timeout or a 503/504, is sent
        again with the same key: the platform makes it once however often it arrives. Not a
        message send: the gateway stores each as a new message, key or not."""
        pauses: tuple[float, ...] = ()
        if method.upper() in CHANGES and not path.endswith("/messages"):
            kwargs["headers"] = {
                "Idempotency-Key": str(uuid.uuid4()),
                **(kwargs.get("headers") or {}),
            }
            pauses = RETRY_PAUSES
        for attempt in range(len(pauses) + 1):
            if attempt:
                time.sleep(pauses[attempt - 1])
            last = attempt == len(pauses)
            try:
                reply = self._send(method, path, **kwargs)
            except httpx.ConnectError as exc:
                raise GatewayUnreachable(self._unreachable(exc)) from None
            except httpx.TimeoutException:
                if last:
                    raise GatewayUnreachable(
                        f"the gateway at {self.base_url} did not answer in time"
                    ) from None
                continue
            if last or reply.status_code not in RETRY_STATUSES:
                break
        self._check(reply)
        return reply.status_code, reply.json() if reply.content else None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, sent again after the `Retry-After` of a 429: the gateway refused it
        before doing anything, so any request, a message send included, may be repeated."""
        for _ in range(RATE_RETRIES):
            reply = self._http.request(method, path, **kwargs)
            if reply.status_code != 429:
                return reply
            retry_after = reply.headers.get("retry-after", "1")
            time.sleep(min(float(retry_after) if retry_after.isdigit() else 1.0, MAX_RATE_WAIT))
        return self._http.request(method, path, **kwargs)

    def events(self, path: str) -> Generator[ServerSentEvent, None, None]:
        """A server-sent event stream, event by event, until the gateway ends it. A broken
        connection is GatewayUnreachable, as a refused one is: the caller may reconnect."""
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        try:
            with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    self._check(reply)
                yield from parse_events(reply.iter_lines())
        except httpx.ConnectError as exc:
            raise GatewayUnreachable(self._unreachable(exc)) from None
        except httpx.TimeoutException:
            raise GatewayUnreachable(
                f"the gateway at {self.base_url} sent nothing for {STREAM_READ_TIMEOUT:g}s"
            ) from None
        except httpx.TransportError as exc:
            raise GatewayUnreachable(f"the connection to the gateway broke: {exc}") from None

    def _check(self, reply: httpx.Response) -> None:
        if reply.status_code == 401:
            where = (
                f" (token from {self._token_source})"
                if self._token_source
                else "; set CORTEX_TOKEN or run `cortex up` in this directory"
            )
            raise CliError(f"the gateway refused the token{where}: {_detail(reply)}", status=401)
        if reply.status_code >= 400:
            raise CliError(
                _problem_text(reply), status=reply.status_code, details=_problem_details(reply)
            )

    def _unreachable(self, exc: Exception | None = None) -> str:
        if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return (
                f"the gateway at {self.base_url} has a certificate this machine does not trust "
                f"({exc}); set CORTEX_TLS_CA to the CA that issued it"
            )
        return (
            f"cannot reach the gateway at {self.base_url}: is `cortex up` running? "
            "(set CORTEX_URL for another address)"
        )

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def close(self) -> None:
        self._http.close()


def _detail(reply: httpx.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text.strip() or reply.reason_phrase
    return str(body.get("detail") or body) if isinstance(body, dict) else str(body)


def _problem_details(reply: httpx.Response) -> dict[str, Any]:
    try:
        details = reply.json().get("details")
    except (ValueError, AttributeError):
        return {}
    return details if isinstance(details, dict) else {}


def _problem_text(reply: httpx.Response) -> str:
    detail = _detail(reply)
    text = f"{reply.status_code} {reply.reason_phrase}: {detail}"
    try:
        errors = reply.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    lines = [f"{item.get('field')}: {item.get('message')}" for item in errors]
    if lines == [detail]:  # one violation is the detail itself: say it once
        return text
    return "\n  ".join([text, *lines])
