"""What a host makes of the starts it was in the middle of when it died
(services/cortex/host/start_journal.py)."""

from __future__ import annotations

from pathlib import Path

from cortex.contracts.hosts import ReplicaSpec
from cortex.host.start_journal import StartJournal


def spec(agent: str, config: dict[str, object] | None = None) -> ReplicaSpec:
    return ReplicaSpec(
        instance_id=f"{agent}-x",
        agent_id=agent,
        agent_name=agent,
        template="t",
        template_version="1",
        handler="m:C",
        config=config or {},
    )


def test_a_clean_start_leaves_nothing_to_judge(tmp_path: Path) -> None:
    path = tmp_path / "starting.json"
    journal = StartJournal(path)
    with journal.starting([spec("a"), spec("b")]):
        pass
    again = StartJournal(path)
    assert not again.suspect(spec("a"))
    assert not again.killed_by(spec("a"))


def test_a_death_makes_suspects_and_a_second_alone_convicts(tmp_path: Path) -> None:
    path = tmp_path / "starting.json"
    journal = StartJournal(path)
    # The process dies inside: the note stays (the context is kept, never left).
    dying = journal.starting([spec("a"), spec("b")])
    dying.__enter__()
    restarted = StartJournal(path)
    assert restarted.suspect(spec("a"))
    assert restarted.suspect(spec("b"))
    assert not restarted.killed_by(spec("a"))
    # `a` comes through alone: no longer suspect. `b`, alone, ends the host again.
    with restarted.starting([spec("a")], solo=True):
        pass
    assert not restarted.suspect(spec("a"))
    dying_again = restarted.starting([spec("b")], solo=True)
    dying_again.__enter__()
    judged = StartJournal(path)
    assert judged.killed_by(spec("b"))
    assert not judged.killed_by(spec("a"))
    # Remembered over later restarts; a new config is a new chance.
    assert StartJournal(path).killed_by(spec("b"))
    assert not judged.killed_by(spec("b", {"fixed": True}))


def test_an_unreadable_note_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "starting.json"
    path.write_text("{not json")
    assert not StartJournal(path).killed_by(spec("a"))
