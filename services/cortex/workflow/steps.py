"""What each task type does for one attempt: agent requests, HTTP calls, state reads and writes,
transforms. The runner around them handles retries, timeouts and the record of it all.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import jmespath
import msgspec
from nats.aio.client import Client as NATS

from cortex.contracts.lifecycle import AgentPage, AgentRef, AgentView, ListAgents
from cortex.contracts.state import GetState, PatchState, PutState, StateView, StateWrite
from cortex.contracts.subjects import Subjects
from cortex.contracts.workflow import StepSpec
from cortex.kernel.bus.rpc import ServiceClient
from cortex.kernel.ids import utcnow
from cortex.kernel.messages import (
    claimed_payload,
    payload_for_api,
    read_message,
    reply_error,
    request_agent,
)
from cortex.kernel.serving import SERVING, not_serving

from .durations import step_timeout
from .egress import EgressDenied
from .redaction import redact_headers, redact_text, redact_url, secret_name
from .substitution import ReferenceError, substitute

HTTP_MAX_BYTES = 1024 * 1024
"""Most bytes of a response body an `http` step reads by default."""


class StepError(Exception):
    """One attempt of a step failed; the message is what the execution's timeline shows.

    `permanent`: another attempt cannot do better (a reference that does not resolve), so the
    step fails for good at once rather than after its retries."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass
class Scope:
    """What a step can see: the execution's parameters and the outputs of finished steps."""

    execution_id: str
    params: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """Who a step's messages and writes come from."""
        return f"workflow:{self.execution_id}"

    def data(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "steps": {step: {"output": out} for step, out in self.outputs.items()},
        }

    def fill(self, value: Any) -> Any:
        try:
            return substitute(value, self.data())
        except ReferenceError as exc:
            raise StepError(str(exc), permanent=True) from None


class Tasks:
    """The four task types, over the platform's NATS connection and one HTTP client."""

    def __init__(
        self,
        nc: NATS,
        subjects: Subjects,
        client: ServiceClient,
        http: httpx.AsyncClient,
        *,
        http_max_bytes: int = HTTP_MAX_BYTES,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._subjects = subjects
        self._client = client
        self._http = http
        self._http_max_bytes = http_max_bytes
        self._turns: dict[str, int] = {}

    async def run(self, step: StepSpec, scope: Scope) -> Any:
        if step.type == "agent":
            return await self.agent(step, scope)
        if step.type == "http":
            return await self.http(step, scope)
        if step.type == "state":
            return await self.state(step, scope)
        if step.type == "transform":
            return self.transform(step, scope)
        raise StepError(f"step {step.id} has no task type", permanent=True)

    # --- agent -------------------------------------------------------------------------------

    async def agent(self, step: StepSpec, scope: Scope) -> Any:
        payload = msgspec.json.encode(scope.fill(step.input))
        if step.pool is not None:
            target = await self._pick(_text(scope.fill(step.pool), "pool"))
        else:
            target = await self._find(_text(scope.fill(step.agent), "agent"))
            idle = not_serving(target.name, target.status)
            if idle is not None:
                raise StepError(idle)
        # The request says when its caller stops waiting: a host that gets to it later (after
        # a timeout or a cancel) acknowledges it without running the handler.
        deadline = utcnow() + timedelta(seconds=step_timeout(step))
        return await self._request(target, payload, scope.actor, deadline)

    async def _find(self, ref: str) -> AgentView:
        """An agent by id, name or `<name>.<pool>` (names and ids have no dots)."""
        name, dot, pool = ref.rpartition(".")
        agent = await self._client.call("lifecycle", "agent.get", AgentRef(name or ref), AgentView)
        if dot and agent.pool != pool:
            where = f"pool {agent.pool!r}" if agent.pool else "no pool"
            raise StepError(f"agent {name!r} is not in pool {pool!r} (it is in {where})")
        return agent

    async def _pick(self, pool: str) -> AgentView:
        """The pool's running agents in turn (a counter per pool in this process)."""
        page = await self._client.call(
            "lifecycle", "agent.list", ListAgents(pool=pool, limit=5000), AgentPage
        )
        running = [a for a in page.items if a.status in SERVING]
        if not running:
            raise StepError(f"no running agent in pool {pool!r}")
        turn = self._turns.get(pool, 0)
        self._turns[pool] = turn + 1
        return running[turn % len(running)]

    async def _request(
        self, agent: AgentView, payload: bytes, sender: str, deadline: datetime
    ) -> Any:
        """A request over the agent's inbox, as agents request each other; the runner's
        timeout bounds the wait."""
        msg = await request_agent(
            self._nc,
            self._js,
            self._subjects,
            agent.id,
            payload,
            content_type="application/json",
            sender=sender,
            deadline=deadline,
        )
        error = reply_error(msg)
        if error is not None:
            raise StepError(f"agent {agent.name} failed: {error}")
        reply = await claimed_payload(self._js, read_message(msg, sender))
        if not reply.payload and reply.content_type == "application/octet-stream":
            return None  # the handler returned nothing
        return payload_for_api(reply.content_type, reply.payload)

    # --- http --------------------------------------------------------------------------------

    async def http(self, step: StepSpec, scope: Scope) -> Any:
        method = step.method.upper()
        url = _text(scope.fill(step.url), "url")
        headers = {k: str(v) for k, v in scope.fill(step.headers).items()}
        body = scope.fill(step.body)
        content: dict[str, Any] = {}
        if isinstance(body, str):
            content["content"] = body.encode()
        elif body is not None:
            content["json"] = body
        what = f"{method} {redact_url(url)}"
        secrets = [v for k, v in headers.items() if secret_name(k)] + _url_secrets(url)
        try:
            async with self._http.stream(method, url, headers=headers, **content) as response:
                data = await _read_capped(response, self._http_max_bytes, what)
        except EgressDenied as exc:
            raise StepError(f"{what}: {exc}", permanent=True) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise StepError(f"{what}: {exc} (http and https URLs only)", permanent=True) from None
        except httpx.HTTPError as exc:
            error = f"{what}: {type(exc).__name__}: {exc}"
            raise StepError(redact_text(error, secrets)) from None
        text = _decoded(data, response.charset_encoding)
        answer: Any = text
        if "json" in response.headers.get("content-type", ""):
            with contextlib.suppress(msgspec.DecodeError):  # a wrong content type: the text
                answer = msgspec.json.decode(data)
        status = response.status_code
        if not (status in step.expect_status if step.expect_status else 200 <= status < 300):
            expected = ", ".join(map(str, step.expect_status)) if step.expect_status else "2xx"
            excerpt = redact_text(text[:200], secrets)
            raise StepError(f"{what} answered {status} (expected {expected}): {excerpt}")
        return {
            "status": status,
            "headers": redact_headers(response.headers.multi_items()),
            "body": answer,
        }

    # --- state -------------------------------------------------------------------------------

    async def state(self, step: StepSpec, scope: Scope) -> Any:
        agent = await self._find(_text(scope.fill(step.agent), "agent"))
        if step.op == "get":
            view = await self._client.call("registry", "state.get", GetState(agent.id), StateView)
            return view.value
        value = scope.fill(step.value)
        written: StateWrite
        if step.op == "put":
            cmd = PutState(agent_id=agent.id, value=value, writer=scope.actor)
            written = await self._client.call("registry", "state.put", cmd, StateWrite)
        else:
            if not isinstance(value, dict):
                raise StepError(
                    "a state patch is an object (an RFC 7396 merge-patch)", permanent=True
                )
            patch = PatchState(agent_id=agent.id, patch=value, writer=scope.actor)
            written = await self._client.call("registry", "state.patch", patch, StateWrite)
        return written.state.value

    # --- transform ---------------------------------------------------------------------------

    @staticmethod
    def transform(step: StepSpec, scope: Scope) -> Any:
        if step.expression is not None:
            try:
                return jmespath.search(step.expression, scope.data())
            except jmespath.exceptions.JMESPathError as exc:
                raise StepError(f"{step.expression}: {exc}", permanent=True) from None
        return scope.fill(step.output)


async def _read_capped(response: httpx.Response, limit: int, what: str) -> bytes:
    """The body, decoded as sent (gzip and the like), refused past `limit` bytes without
    holding more than that in memory."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise StepError(
            f"too_large: {what} answered {int(declared)} bytes, more than the {limit} an http "
            "step reads (CORTEX_HTTP_STEP_MAX_BYTES)",
            permanent=True,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise StepError(
                f"too_large: {what} answered more than the {limit} bytes an http step reads "
                "(CORTEX_HTTP_STEP_MAX_BYTES)",
                permanent=True,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _decoded(data: bytes, charset: str | None) -> str:
    """The body as text in its declared charset; UTF-8 when it declares none, or one Python
    does not know (`charset=foo` must not fail the step)."""
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _url_secrets(url: str) -> list[str]:
    """The parts of `url` that `redact_url` hides, for hiding them in error texts too."""
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        return []
    found = [parts.password or ""]
    if parts.password:  # httpx sends it as Basic auth, which a server may echo
        found.append(base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode())
    found += [v for k, v in parts.params.multi_items() if secret_name(k)]
    return [f for f in found if f]


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise StepError(f"{what} must be a non-empty string, not {value!r}", permanent=True)
    return value
