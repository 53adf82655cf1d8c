from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cortex.kernel.errors import Conflict, Invalid
from cortex.kernel.tokens import TokenRegistry, create_token, revoke_token


def test_tokens_are_checked_by_role_and_file_changes_apply(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    registry = TokenRegistry("the-admin-token", path)
    assert registry.authenticate("the-admin-token").role == "admin"  # type: ignore[union-attr]
    assert registry.authenticate("nope") is None

    viewer, record = create_token(path, "dash", "viewer")
    assert (record.name, record.role) == ("dash", "viewer")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert viewer not in path.read_text()  # only the hash is kept
    principal = registry.authenticate(viewer)
    assert principal is not None
    assert (principal.name, principal.role) == ("dash", "viewer")
    assert principal.may("viewer")
    assert not principal.may("operator")

    assert revoke_token(path, "dash")
    assert registry.authenticate(viewer) is None
    assert not revoke_token(path, "dash")


def test_bad_token_requests_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    create_token(path, "ci", "operator")
    with pytest.raises(Conflict):
        create_token(path, "ci", "viewer")
    with pytest.raises(Invalid, match="role"):
        create_token(path, "x", "root")  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="name"):
        create_token(path, "two words", "viewer")
    with pytest.raises(Conflict, match="admin token"):
        create_token(path, "admin", "viewer")


def test_tokens_created_at_once_by_several_writers_are_all_kept(tmp_path: Path) -> None:
    """The CLI and each gateway replica of a machine write the same file."""
    path = tmp_path / "tokens.json"
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: create_token(path, f"t{i}", "viewer")[0], range(40)))
    registry = TokenRegistry("", path)
    assert all(registry.authenticate(token) for token in made)
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(lambda i: revoke_token(path, f"t{i}"), range(0, 40, 2)))
    kept = {p.name for t in made if (p := registry.authenticate(t))}
    assert kept == {f"t{i}" for i in range(1, 40, 2)}
