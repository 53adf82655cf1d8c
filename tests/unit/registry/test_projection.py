"""The registry's read model: hosts, instances and stream versions, from envelopes alone."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from cortex.contracts.events import EventEnvelope
from cortex.contracts.registry import (
    HostDeregistered,
    HostRegistered,
    InstanceDeregistered,
    InstanceRegistered,
)
from cortex.registry.projections import HostsProjection

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Feed:
    def __init__(self) -> None:
        self.position = 0
        self.versions: dict[str, int] = {}

    def __call__(self, host_id: str, event: msgspec.Struct) -> EventEnvelope:
        self.position += 1
        stream = f"host-{host_id}"
        self.versions[stream] = self.versions.get(stream, 0) + 1
        return EventEnvelope(
            event_id=str(self.position),
            stream_id=stream,
            stream_type="host",
            version=self.versions[stream],
            position=self.position,
            type=type(event).TYPE,  # type: ignore[attr-defined]
            data=msgspec.Raw(msgspec.json.encode(event)),
            occurred_at=T0,
        )


def host(host_id: str) -> HostRegistered:
    return HostRegistered(host_id=host_id, boot_id="b", hostname="x", pid=1, started_at=T0)


def instance(iid: str) -> InstanceRegistered:
    return InstanceRegistered(instance_id=iid, agent_id="a", agent_name="n", started_at=T0)


def test_hosts_instances_and_versions_follow_the_events() -> None:
    feed = Feed()
    events = [
        feed("h1", host("h1")),
        feed("h1", instance("i2")),
        feed("h2", host("h2")),
        feed("h2", instance("i1")),
        feed("h1", instance("i3")),
        feed("h1", InstanceDeregistered(instance_id="i3", reason="stopped")),
        feed("h2", HostDeregistered(reason="gone")),
    ]
    projection = HostsProjection()
    for envelope in events:
        projection.apply(envelope)

    assert list(projection.hosts()) == ["h1"]
    assert projection.stream_version("h1") == 4
    assert projection.stream_version("h2") == 3  # kept: a returning host appends after it
    assert projection.instance_ids() == ["i2"]
    found = projection.instance("i2")
    assert found is not None
    assert found[0] == "h1"
    assert projection.instance("i1") is None

    restored = HostsProjection()
    restored.restore(projection.snapshot())
    assert restored.instance_ids() == ["i2"]
    assert restored.model == projection.model


def test_paging_starts_after_the_given_id() -> None:
    feed = Feed()
    projection = HostsProjection()
    projection.apply(feed("h1", host("h1")))
    for iid in ("c", "a", "b"):
        projection.apply(feed("h1", instance(iid)))
    assert projection.instance_ids() == ["a", "b", "c"]
    assert projection.instance_ids("a") == ["b", "c"]
    assert projection.instance_ids("bb") == ["c"]


def test_other_streams_are_ignored() -> None:
    projection = HostsProjection()
    projection.apply(
        EventEnvelope(
            event_id="1",
            stream_id="agent-1",
            stream_type="agent",
            version=1,
            position=1,
            type="agent.created",
            data=msgspec.Raw(b"{}"),
            occurred_at=T0,
        )
    )
    assert projection.hosts() == {}
    assert projection.model.versions == {}


def test_instances_are_found_by_agent_also_after_a_restore() -> None:
    feed = Feed()
    projection = HostsProjection()
    for envelope in (
        feed("h1", host("h1")),
        feed("h2", host("h2")),
        feed(
            "h1", InstanceRegistered(instance_id="i2", agent_id="a", agent_name="n", started_at=T0)
        ),
        feed(
            "h2", InstanceRegistered(instance_id="i1", agent_id="a", agent_name="n", started_at=T0)
        ),
        feed(
            "h2", InstanceRegistered(instance_id="i3", agent_id="b", agent_name="m", started_at=T0)
        ),
        feed(
            "h1", InstanceRegistered(instance_id="i4", agent_id="a", agent_name="n", started_at=T0)
        ),
        feed("h1", InstanceDeregistered(instance_id="i4", reason="stopped")),
    ):
        projection.apply(envelope)

    def found(p: HostsProjection, agent: str) -> list[tuple[str, str]]:
        return [(iid, host_id) for iid, host_id, _ in p.instances_of(agent)]

    assert found(projection, "a") == [("i1", "h2"), ("i2", "h1")]
    assert found(projection, "b") == [("i3", "h2")]
    assert found(projection, "nobody") == []

    restored = HostsProjection()
    restored.restore(projection.snapshot())
    assert found(restored, "a") == found(projection, "a")

    projection.apply(feed("h2", HostDeregistered(reason="gone")))
    assert found(projection, "a") == [("i2", "h1")]
    assert found(projection, "b") == []
