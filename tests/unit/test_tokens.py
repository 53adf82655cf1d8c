from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cortex.kernel.errors import Conflict, Invalid
from cortex.kernel.tokens import TokenRegistry, create_token, revoke_token


def test_tokens_are_checked_by_role_and_file_changes_apply(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    registry = TokenRegistry("the-admin-token", path)
    assert registry.authenticate("the-admin-token").role == "admin"  # type: ignore[union-attr]
    assert registry.authenticate("nope") is None

    viewer = create_token(path, "dash", "viewer")
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
