"""Calling a service's command or query endpoint over NATS request/reply."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from opentelemetry.trace import SpanKind

from cortex.contracts import headers as h
from cortex.contracts.errors import Error
from cortex.contracts.replies import Ok
from cortex.contracts.subjects import Subjects
from cortex.kernel.context import outgoing
from cortex.kernel.errors import Internal, Timeout, Unavailable, from_contract
from cortex.kernel.tracing import span

T = TypeVar("T")


NO_RESPONDER_RETRIES = (0.05, 0.2)
"""Pauses before asking again when nobody answered: a service that is (re)starting subscribes
its endpoints a moment after it becomes reachable, and a restart takes a moment."""


class _Head(msgspec.Struct):
    error: Error | None = None


_head_decoder = msgspec.json.Decoder(_Head)


class ServiceClient:
    """Sends commands and queries; a remote error is raised here as the same `CortexError`."""

    def __init__(self, nc: NATS, subjects: Subjects, *, timeout: float = 5.0) -> None:
        self._nc = nc
        self._subjects = subjects
        self._timeout = timeout

    async def call(
        self,
        service: str,
        verb: str,
        body: Any,
        reply_type: type[T],
        *,
        timeout: float | None = None,
        actor: str | None = None,
        idempotency_key: str | None = None,
    ) -> T:
        """The reply's result. The call carries the correlation id and trace of the work under
        way (`cortex.kernel.context`), and is a client span of that trace."""
        wait = timeout or self._timeout
        payload = body if isinstance(body, bytes) else msgspec.json.encode(body)
        subject = self._subjects.command(service, verb)
        with span(
            f"{service}/{verb}",
            SpanKind.CLIENT,
            attributes={"rpc.system": "nats", "rpc.service": service, "rpc.method": verb},
        ):
            hdrs = outgoing({})
            if actor:
                hdrs[h.ACTOR] = actor
            if idempotency_key:
                hdrs[h.IDEMPOTENCY_KEY] = idempotency_key
            try:
                for pause in (*NO_RESPONDER_RETRIES, None):
                    try:
                        msg = await self._nc.request(subject, payload, timeout=wait, headers=hdrs)
                        break
                    except NoRespondersError:
                        if pause is None:
                            raise Unavailable(f"the {service} service is not running") from None
                        await asyncio.sleep(pause)
            except (NatsTimeoutError, TimeoutError):
                raise Timeout(
                    f"the {service} service did not answer {verb} within {wait:g}s"
                ) from None
            try:
                head = _head_decoder.decode(msg.data)
                if head.error is not None:
                    raise from_contract(head.error)
                return msgspec.json.decode(msg.data, type=Ok[reply_type]).result  # type: ignore[valid-type]
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise Internal(f"the {service} service sent an unreadable reply: {exc}") from None
