from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import Stack


@pytest.fixture(scope="session", autouse=True)
def no_stack_left_behind() -> Iterator[None]:
    """A test that failed before stopping its own platform leaves it to the session's end."""
    yield
    for left in list(Stack.started):
        left.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One running platform shared by a module's read-mostly tests."""
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    """A platform of the test's own, for tests that kill or restart parts of it."""
    running = Stack(tmp_path / "stack")
    yield running
    running.stop()
