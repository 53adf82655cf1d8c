"""The CLI sends every change with an idempotency key and retries it, key unchanged, when the
answer may not have been the last word (a timeout, 503, 504)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from cortex.cli import client as cli_client
from cortex.cli.client import CliError, GatewayClient, GatewayUnreachable

Answer = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_client, "RETRY_PAUSES", (0.0, 0.0))


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


def gateway(seen: list[httpx.Request], answers: Iterator[Answer | int]) -> GatewayClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(answers)
        if isinstance(answer, int):
            return httpx.Response(answer, json={"detail": "x", "code": "unavailable"})
        return answer(request)

    client = GatewayClient("http://gateway", "token", "test")
    client._http = httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(handle))
    return client


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def created(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": "a1"})


def test_a_change_is_sent_again_with_the_same_key_after_a_timeout_or_503(
    seen: list[httpx.Request],
) -> None:
    api = gateway(seen, iter([timeout, 503, created]))
    assert api.exchange("POST", "/api/v1/agents", json={"name": "a"}) == (201, {"id": "a1"})
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 3
    assert len(keys) == 1
    assert keys.pop()


def test_retries_end_and_the_last_answer_stands(seen: list[httpx.Request]) -> None:
    with pytest.raises(CliError) as caught:
        gateway(seen, iter([504, 503, 503])).request("DELETE", "/api/v1/pools/p")
    assert caught.value.status == 503
    with pytest.raises(GatewayUnreachable, match="did not answer in time"):
        gateway(seen, iter([timeout, timeout, timeout])).request("PUT", "/api/v1/agents/a")


def test_each_change_has_its_own_key_and_other_answers_are_not_retried(
    seen: list[httpx.Request],
) -> None:
    api = gateway(seen, iter([409, created]))
    with pytest.raises(CliError):
        api.request("POST", "/api/v1/agents", json={"name": "a"})
    api.request("POST", "/api/v1/agents", json={"name": "a"})
    assert len(seen) == 2
    assert seen[0].headers["Idempotency-Key"] != seen[1].headers["Idempotency-Key"]


def test_reads_and_message_sends_carry_no_key_and_are_not_retried(
    seen: list[httpx.Request],
) -> None:
    api = gateway(seen, iter([503, 503]))
    with pytest.raises(CliError):
        api.get("/api/v1/agents")
    with pytest.raises(CliError):
        api.request("POST", "/api/v1/agents/a/messages", json={"payload": 1})
    assert len(seen) == 2
    assert all("Idempotency-Key" not in r.headers for r in seen)


def test_a_rate_limited_request_waits_as_told_and_goes_again(
    seen: list[httpx.Request], monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(cli_client.time, "sleep", slept.append)

    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "2"}, json={"code": "rate_limited"})

    def sent(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"message_id": "m1"})

    api = gateway(seen, iter([limited, limited, sent]))
    assert api.request("POST", "/api/v1/agents/a/messages", json={"payload": 1}) == {
        "message_id": "m1"
    }
    assert len(seen) == 3
    assert slept == [2.0, 2.0]
