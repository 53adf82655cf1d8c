"""The `http` step's egress policy: which addresses and ports it refuses, with which rule, and
that the check is made on the address actually connected to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from cortex.kernel.service.admin import EmbeddedServer, Receive, Scope, Send
from cortex.workflow.egress import EgressDenied, EgressPolicy, GuardedTransport, parse_allow


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.20.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared"),
        ("fd12:3456::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_internal_addresses_are_refused_by_default_naming_their_rule(
    address: str, rule: str
) -> None:
    with pytest.raises(EgressDenied) as refused:
        EgressPolicy().check(address, address, 80)
    assert refused.value.rule == rule
    assert f"rule '{rule}'" in str(refused.value)
    assert "CORTEX_HTTP_STEP_ALLOW" in str(refused.value)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    EgressPolicy(platform_ports={80, 443}).check(address, address, 443)


def test_an_allow_entry_opens_its_range_but_not_the_platforms_own_ports() -> None:
    policy = EgressPolicy(parse_allow("127.0.0.1, 10.0.0.0/8"), platform_ports={4222, 41000})
    policy.check("127.0.0.1", "127.0.0.1", 8000)
    policy.check("10.9.8.7", "10.9.8.7", 443)
    with pytest.raises(EgressDenied) as refused:
        policy.check("127.0.0.1", "127.0.0.1", 41000)
    assert refused.value.rule == "platform-port"
    with pytest.raises(EgressDenied):
        policy.check("10.9.8.7", "10.9.8.7", 4222)
    with pytest.raises(EgressDenied) as still:
        policy.check("192.168.0.1", "192.168.0.1", 8000)
    assert still.value.rule == "private"


def test_an_entry_with_a_port_opens_that_port_only_even_a_platform_port() -> None:
    policy = EgressPolicy(parse_allow("127.0.0.1:41000, [::1]:9000"), platform_ports={41000})
    policy.check("127.0.0.1", "127.0.0.1", 41000)
    policy.check("::1", "::1", 9000)
    with pytest.raises(EgressDenied):
        policy.check("127.0.0.1", "127.0.0.1", 8000)


def test_host_name_entries_open_what_that_name_resolves_to() -> None:
    policy = EgressPolicy(parse_allow("api.internal, *.svc.cluster.local"))
    policy.check("API.internal", "10.0.0.5", 80)
    policy.check("db.team.svc.cluster.local", "10.3.0.9", 8080)
    with pytest.raises(EgressDenied):
        policy.check("other.internal", "10.0.0.5", 80)
    with pytest.raises(EgressDenied):
        policy.check("svc.cluster.local.evil.example", "10.0.0.5", 80)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("10.0.0.0/33", "'10.0.0.0/33'"),
        ("127.0.0.1:0", "not a port"),
        ("127.0.0.1:http", "not a port"),
        ("[::1", "without a closing"),
        ("bad host!", "not a network"),
    ],
)
def test_a_bad_allow_entry_is_an_error_naming_it(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="CORTEX_HTTP_STEP_ALLOW") as bad:
        parse_allow(f"127.0.0.1, {text}")
    assert "CORTEX_HTTP_STEP_ALLOW" in str(bad.value)
    assert problem in str(bad.value)


# --- through httpx, against a real local server ------------------------------------------


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    host = dict(scope["headers"]).get(b"host", b"")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello " + host})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = uvicorn.Config(hello, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = EmbeddedServer(config)
    task = await server.start_serving()
    yield server.port
    server.should_exit = True
    await task


async def test_a_loopback_server_is_refused_before_any_connection(port: int) -> None:
    async with httpx.AsyncClient(transport=GuardedTransport(EgressPolicy())) as client:
        with pytest.raises(EgressDenied) as refused:
            await client.get(f"http://127.0.0.1:{port}/")
    assert refused.value.rule == "loopback"
    assert refused.value.port == port


async def test_the_check_is_on_the_address_a_name_resolves_to(port: int) -> None:
    """DNS rebinding: a name that is not an address in the URL, resolving to loopback."""

    async def rebinding(host: str, _port: int) -> list[str]:
        return ["127.0.0.1"]

    transport = GuardedTransport(EgressPolicy(), resolver=rebinding)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(EgressDenied) as refused:
            await client.get(f"http://innocent.example:{port}/")
    assert (refused.value.host, refused.value.address) == ("innocent.example", "127.0.0.1")

    allowed = GuardedTransport(EgressPolicy(parse_allow("api.internal")), resolver=rebinding)
    async with httpx.AsyncClient(transport=allowed) as client:
        answer = await client.get(f"http://api.internal:{port}/")
    # Connected to the checked address, while the request still names the host it asked for.
    assert answer.text == f"hello api.internal:{port}"


async def test_an_allowed_name_connects_to_its_allowed_address_only(port: int) -> None:
    async def mixed(host: str, _port: int) -> list[str]:
        return ["169.254.169.254", "127.0.0.1"]

    transport = GuardedTransport(EgressPolicy(parse_allow("127.0.0.1")), resolver=mixed)
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await client.get(f"http://twofaced.example:{port}/")
    assert answer.status_code == 200
