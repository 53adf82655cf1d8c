"""The ArangoDB URL of CORTEX_STORE: several coordinators, IPv6, and what a log may show."""

from __future__ import annotations

import pytest

from cortex.kernel.errors import Invalid
from cortex.kernel.settings import redact_url
from cortex.kernel.store.arangodb import arango_target


def test_several_coordinators_ipv6_and_default_ports() -> None:
    target = arango_target("arangodb://cortex:p%40ss@[2001:db8::1]:8530,db-2,10.0.0.3:9000/prod")
    assert target.hosts == ["http://[2001:db8::1]:8530", "http://db-2:8529", "http://10.0.0.3:9000"]
    assert (target.username, target.password, target.database) == ("cortex", "p@ss", "prod")
    tls = arango_target("arangodbs://db/cortex")
    assert (tls.hosts, tls.username, tls.password) == (["https://db:8529"], "root", "")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("arangodb://::1:8529/c", "an IPv6 address goes in brackets"),
        ("arangodb://db:70000/c", "'db:70000' is not host[:port]"),
        ("arangodb://db,,db2/c", "'' is not host[:port]"),
        ("arangodb://db:8529/", "names its database"),
        ("postgres://db/c", "not an ArangoDB URL"),
    ],
)
def test_a_url_that_cannot_work_is_refused_saying_why(url: str, says: str) -> None:
    with pytest.raises(Invalid, match="store") as refused:
        arango_target(url)
    assert says in refused.value.message


def test_only_the_password_is_hidden_however_the_hosts_are_written() -> None:
    url = "arangodb://cortex:s3cret@[::1]:8529,db-2:8529/prod"
    assert redact_url(url) == "arangodb://cortex:***@[::1]:8529,db-2:8529/prod"
    with pytest.raises(Invalid) as refused:
        arango_target("arangodb://cortex:s3cret@::1/prod")
    assert "s3cret" not in refused.value.message
    assert redact_url("nats://nats-0:4222") == "nats://nats-0:4222"
