"""Event codecs: upcasting old versions, refusing what cannot be read, events too large to carry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec
import pytest
from prometheus_client import REGISTRY

from cortex.contracts.events import EventEnvelope
from cortex.kernel.errors import TooLarge
from cortex.kernel.events import EventCodec, Quarantine, UndecodableEvent, check_publishable
from cortex.kernel.store import NewEvent


class Greeted(msgspec.Struct, frozen=True):
    """Version 3: `who` was `name` in version 1; version 2 added `times`, version 3 `loud`."""

    TYPE: ClassVar[str] = "greeting.sent"
    who: str
    times: int
    loud: bool


def rename(body: dict[str, Any]) -> dict[str, Any]:
    body["who"] = body.pop("name")
    return body


def count_once(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "times": 1}


def quiet(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "loud": False}


CODEC = EventCodec(
    Greeted,
    upcasters={
        ("greeting.sent", 1): rename,
        ("greeting.sent", 2): count_once,
        ("greeting.sent", 3): quiet,
    },
)


def stored(data: object, schema_version: int, kind: str = "greeting.sent") -> EventEnvelope:
    return EventEnvelope(
        event_id=f"e-{schema_version}-{kind}",
        stream_id="greeting-1",
        stream_type="greeting",
        version=1,
        position=7,
        type=kind,
        data=msgspec.Raw(data if isinstance(data, bytes) else msgspec.json.encode(data)),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        schema_version=schema_version,
    )


def test_old_versions_are_upcast_in_order_and_the_current_one_decodes_as_it_is() -> None:
    assert CODEC.schema_version("greeting.sent") == 4
    expected = Greeted(who="ada", times=1, loud=False)
    assert CODEC.decode(stored({"name": "ada"}, 1)) == expected
    assert CODEC.decode(stored({"who": "ada"}, 2)) == expected
    assert CODEC.decode(stored({"who": "ada", "times": 1}, 3)) == expected
    assert CODEC.decode(stored({"who": "ada", "times": 1, "loud": False}, 4)) == expected


def test_new_events_are_written_with_the_current_version() -> None:
    new = CODEC.new(Greeted(who="ada", times=2, loud=True), stream_type="greeting")
    assert new.schema_version == 4
    again = stored(new.data, new.schema_version)
    assert CODEC.decode(again) == Greeted(who="ada", times=2, loud=True)


def test_types_a_codec_does_not_know_decode_to_none() -> None:
    assert CODEC.decode(stored({"anything": 1}, 9, kind="other.thing")) is None


@pytest.mark.parametrize(
    ("data", "version", "reason"),
    [
        ({"who": "ada"}, 4, "missing required field `times`"),
        (b"{not json", 4, "JSON is malformed"),
        ({"who": "ada"}, 1, "upcasting from version 1: KeyError('name')"),
        ({"who": "ada", "times": 1, "loud": True}, 5, "reads versions 1 to 4"),
        ({"who": "ada", "times": 1, "loud": True}, 0, "reads versions 1 to 4"),
    ],
)
def test_what_cannot_be_read_is_refused_with_the_reason(
    data: object, version: int, reason: str
) -> None:
    with pytest.raises(UndecodableEvent) as caught:
        CODEC.decode(stored(data, version))
    assert reason in caught.value.reason
    message = str(caught.value)
    assert f"e-{version}-greeting.sent" in message
    assert "position 7" in message


def test_upcasters_must_start_at_one_without_gaps_and_name_a_known_type() -> None:
    with pytest.raises(TypeError, match="version 1 has none, 2 has one"):
        EventCodec(Greeted, upcasters={("greeting.sent", 2): quiet})
    with pytest.raises(TypeError, match="version 2 has none, 3 has one"):
        EventCodec(Greeted, upcasters={("greeting.sent", 1): rename, ("greeting.sent", 3): quiet})
    with pytest.raises(TypeError, match="not an event of this codec"):
        EventCodec(Greeted, upcasters={("other.thing", 1): quiet})


def test_quarantine_logs_counts_and_lists_each_event_once() -> None:
    quarantine = Quarantine("unit-test", keep=2)
    changes: list[int] = []
    quarantine.on_change(lambda: changes.append(len(quarantine.events)))

    def count() -> float:
        labels = {"service": "unit-test", "type": "greeting.sent"}
        return REGISTRY.get_sample_value("cortex_events_quarantined_total", labels) or 0.0

    before = count()
    errors = []
    for version in (0, 5, 6):
        with pytest.raises(UndecodableEvent) as caught:
            CODEC.decode(stored({}, version))
        errors.append(caught.value)
    quarantine.add(errors[0], "projection greetings")
    quarantine.add(errors[0], "aggregate greeting")  # the same event, met again
    quarantine.add(errors[1], "projection greetings")
    quarantine.add(errors[2], "projection greetings")
    assert count() - before == 3
    assert changes == [1, 2, 2]
    listed = quarantine.events
    assert [q.event_id for q in listed] == ["e-5-greeting.sent", "e-6-greeting.sent"]
    assert (listed[0].type, listed[0].position, listed[0].stream_id) == (
        "greeting.sent",
        7,
        "greeting-1",
    )
    assert listed[0].reader == "projection greetings"
    assert "reads versions 1 to 4" in listed[0].error


def event(data: object) -> NewEvent:
    return NewEvent(type="agent.created", stream_type="agent", data=msgspec.json.encode(data))


def test_an_event_over_the_bus_limit_is_refused_naming_the_field_that_makes_it_large() -> None:
    limit = 1024 * 1024
    spread = {"a": "x" * 400_000, "b": "y" * 400_000, "c": "z" * 400_000}
    with pytest.raises(TooLarge) as caught:
        check_publishable("agent-1", [event({"name": "n", "config": spread})], limit)
    assert caught.value.details["field"] == "$.config"
    assert caught.value.message.startswith("event agent.created would be 1.1 MB, over the 1 MB")
    assert caught.value.message.endswith("the bus carries: $.config is 1.1 MB")

    # One member that is most of it: named down to where the size is.
    nested = {"config": {"small": 1, "files": [{"name": "f"}, {"body": "x" * 1_200_000}]}}
    with pytest.raises(TooLarge) as caught:
        check_publishable("agent-1", [event(nested)], limit)
    assert caught.value.details["field"] == "$.config.files[1].body"


def test_the_limit_counts_the_envelope_and_headers_as_the_relay_publishes_them() -> None:
    fits = event({"config": "x" * 1000})
    check_publishable("agent-1", [fits], 2000)
    # The same data is over a limit the data alone would fit in: the envelope counts too.
    with pytest.raises(TooLarge, match="bytes"):
        check_publishable("agent-1", [fits], 1100)
