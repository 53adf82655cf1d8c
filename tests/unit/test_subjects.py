from __future__ import annotations

import pytest

from cortex.contracts.subjects import Subjects


def test_subjects_follow_the_brief() -> None:
    s = Subjects()
    assert s.command("lifecycle", "agent.scale") == "cortex.lifecycle.agent.scale"
    assert s.event("lifecycle", "agent.scaled") == "cortex.evt.lifecycle.agent.scaled"
    assert s.agent_inbox("a1") == "cortex.msg.agent.a1"
    assert s.topic("news") == "cortex.msg.topic.news"
    assert s.dead_letter("a1") == "cortex.dlq.a1"
    assert s.heartbeat("h1") == "cortex.hb.h1"
    assert s.host_control("h1", "start") == "cortex.host.h1.start"
    assert s.log("registry", "error") == "cortex.log.registry.error"
    assert [st.name for st in s.streams()] == [
        "CORTEX_EVENTS",
        "CORTEX_MSGS",
        "CORTEX_MSGSTATUS",
        "CORTEX_DLQ",
        "CORTEX_LOGS",
    ]
    assert s.msg_status("a1", "m1") == "cortex.msgstatus.a1.m1"
    assert s.instance("h1", "i1") == "cortex.instance.h1.i1"


def test_another_prefix_shares_nothing() -> None:
    a, b = Subjects("cortex"), Subjects("tenant-b")
    assert not {st.name for st in a.streams()} & {st.name for st in b.streams()}
    assert b.service_name("registry") == "tenant-b-registry"
    assert b.events_stream == "TENANT_B_EVENTS"


@pytest.mark.parametrize("bad", ["Cortex", "a.b", "", "x" * 40, "a b", "a>"])
def test_a_prefix_that_would_break_subjects_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        Subjects(bad)


@pytest.mark.parametrize("bad", ["a.b", "*", ">", "a b", ""])
def test_ids_that_would_change_a_subject_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="agent id"):
        Subjects().agent_inbox(bad)
