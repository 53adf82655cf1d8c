"""Where an `http` step may connect.

A workflow template is written by an operator, but what an `http` step reads back becomes step
output that every viewer can read, so the step must not become a way into the platform's own
network: cloud metadata endpoints, the NATS monitoring port, the services' admin ports.
Addresses in the internal ranges below are refused unless `CORTEX_HTTP_STEP_ALLOW` opens them,
and the ports of the platform itself stay refused on internal addresses unless an entry names
the port.

The check runs where the connection is made (`GuardedBackend.connect_tcp`), on the address the
socket then connects to: a name that resolves to a public address when checked and to a private
one when connected (DNS rebinding) cannot get past it, and every redirect hop, which opens its
own connection, is checked again.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

PLATFORM_PORT = "platform-port"

INTERNAL_RANGES: tuple[tuple[str, IPNetwork], ...] = tuple(
    (rule, ipaddress.ip_network(cidr))
    for rule, cidrs in (
        ("unspecified", ("0.0.0.0/8", "::/128")),
        ("loopback", ("127.0.0.0/8", "::1/128")),
        ("link-local", ("169.254.0.0/16", "fe80::/10")),
        ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
        ("shared", ("100.64.0.0/10",)),
        ("unique-local", ("fc00::/7", "fec0::/10")),
        ("multicast", ("224.0.0.0/4", "ff00::/8")),
        ("reserved", ("240.0.0.0/4",)),
    )
    for cidr in cidrs
)
"""Each refused range with the name of its rule, which a refusal quotes."""

NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressDenied(Exception):
    """The policy refuses the connection; the message names the address and the rule."""

    def __init__(self, host: str, address: str, port: int, rule: str, detail: str) -> None:
        self.host, self.address, self.port, self.rule = host, address, port, rule
        where = f"{host} ({address}:{port})" if host != address else f"{address}:{port}"
        super().__init__(f"egress policy: {where} {detail} (rule {rule!r})")


@dataclass(frozen=True)
class AllowEntry:
    """One `CORTEX_HTTP_STEP_ALLOW` entry: a network or a host name (`*.` for its subdomains),
    optionally with a port; with a port it opens that port only, platform ports included."""

    network: IPNetwork | None
    host: str | None
    port: int | None

    def covers(self, host: str, address: IPAddress) -> bool:
        if self.network is not None:
            return address.version == self.network.version and address in self.network
        assert self.host is not None
        name = host.lower().rstrip(".")
        if self.host.startswith("*."):
            return name.endswith(self.host[1:])
        return name == self.host


def parse_allow(text: str) -> tuple[AllowEntry, ...]:
    """`10.0.0.0/8, 127.0.0.1:8000, [::1]:9000, api.internal, *.svc.cluster.local`."""
    entries = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            entries.append(_entry(item))
        except ValueError as exc:
            raise ValueError(f"CORTEX_HTTP_STEP_ALLOW entry {item!r}: {exc}") from None
    return tuple(entries)


def _entry(item: str) -> AllowEntry:
    port: int | None = None
    body = item
    if item.startswith("["):  # [IPv6] or [IPv6]:port or [IPv6/len]:port
        close = item.find("]")
        if close < 0:
            raise ValueError("an opening [ without a closing ]")
        body, rest = item[1:close], item[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("only :port may follow ]")
            port = _port(rest[1:])
    elif item.count(":") == 1:
        body, port_text = item.split(":")
        port = _port(port_text)
    try:
        return AllowEntry(ipaddress.ip_network(body, strict=False), None, port)
    except ValueError:
        pass
    name = body.lower().rstrip(".")
    labels = name[2:] if name.startswith("*.") else name
    if not labels or not all(
        part and len(part) <= 63 and all(c.isalnum() or c == "-" for c in part)
        for part in labels.split(".")
    ):
        raise ValueError("not a network (CIDR or address) nor a host name")
    return AllowEntry(None, name, port)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a port (1-65535)")
    return int(text)


def internal_rule(address: IPAddress) -> tuple[str, IPNetwork] | None:
    """The refused range `address` is in, if any (IPv4 written as IPv6 counts as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    for rule, network in INTERNAL_RANGES:
        if address.version == network.version and address in network:
            return rule, network
    return None


class EgressPolicy:
    """What `http` steps may reach. `platform_ports` is replaced as the platform's processes
    come and go (their admin ports are picked at start)."""

    def __init__(self, allow: Iterable[AllowEntry] = (), platform_ports: Iterable[int] = ()):
        self.allow = tuple(allow)
        self.platform_ports = frozenset(platform_ports)

    def check(self, host: str, address: str, port: int) -> None:
        """Raise `EgressDenied` unless `host` (as the URL names it), connected to at
        `address`, may be reached on `port`."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        found = internal_rule(ip)
        if found is None:
            return
        rule, network = found
        opened = [entry for entry in self.allow if entry.covers(host, ip)]
        if any(entry.port == port for entry in opened):
            return
        if any(entry.port is None for entry in opened):
            if port not in self.platform_ports:
                return
            raise EgressDenied(
                host,
                address,
                port,
                PLATFORM_PORT,
                "is a port of the platform itself; only a CORTEX_HTTP_STEP_ALLOW entry that "
                "names the port opens it",
            )
        raise EgressDenied(
            host,
            address,
            port,
            rule,
            f"is in the {rule} range {network}, refused to http steps unless "
            "CORTEX_HTTP_STEP_ALLOW opens it",
        )


async def resolve(host: str, port: int) -> list[str]:
    """Every address of `host`, in the order the system resolver gives them."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each connection's host itself, checks every address, and connects to the
    first address the policy allows (TLS still verifies the name the URL gave)."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver = resolve) -> None:
        self._policy = policy
        self._resolve = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            addresses = [host]
        except ValueError:
            try:
                addresses = await self._resolve(host, port)
            except OSError as exc:
                raise httpcore.ConnectError(f"{host}: {exc}") from exc
        denied: EgressDenied | None = None
        failure: Exception | None = None
        for address in addresses:
            try:
                self._policy.check(host, address, port)
            except EgressDenied as exc:
                denied = denied or exc
                continue
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        if failure is not None:
            raise failure
        if denied is not None:
            raise denied
        raise httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied(path, path, 0, "unix-socket", "is a local socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool on a `GuardedBackend`.

    httpx offers no parameter for the network backend; the pool it builds is replaced with
    an equal one that has it (tests/unit/workflow/test_egress.py fails if this stops taking
    effect)."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver = resolve) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=GuardedBackend(policy, resolver),
        )
