"""Secret config values: which fields, sealing, opening, masks (cortex.kernel.secrets)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cortex.kernel.errors import Invalid, Unavailable
from cortex.kernel.secrets import (
    MASK,
    Sealer,
    ensure_key_file,
    is_sealed,
    mask,
    put_values,
    sealed_values,
    secret_paths,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "api_key": {"type": "string", "writeOnly": True},
        "region": {"type": "string"},
        "db": {
            "type": "object",
            "properties": {
                "password": {"type": "string", "writeOnly": True},
                "host": {"type": "string"},
            },
        },
    },
}
PATHS = list(secret_paths(SCHEMA))


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer(str(ensure_key_file(tmp_path / "secrets.key")))


def test_secret_fields_are_the_write_only_ones_at_any_depth() -> None:
    assert PATHS == [("api_key",), ("db", "password")]
    assert list(secret_paths({"type": "string"})) == []


def test_the_key_file_is_private_and_kept(tmp_path: Path) -> None:
    path = ensure_key_file(tmp_path / "secrets.key")
    first = path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_key_file(path).read_text() == first


def test_sealed_config_holds_no_clear_secret_and_opens_again(sealer: Sealer) -> None:
    config = {"api_key": "sk-live-1234", "region": "eu", "db": {"password": "p4ss", "host": "h"}}
    sealed = sealer.seal_config(config, None, PATHS)
    assert "sk-live-1234" not in repr(sealed)
    assert "p4ss" not in repr(sealed)
    assert is_sealed(sealed["api_key"])
    assert is_sealed(sealed["db"]["password"])
    assert (sealed["region"], sealed["db"]["host"]) == ("eu", "h")
    assert sealer.open_config(sealed) == config
    assert mask(sealed) == {
        "api_key": MASK,
        "region": "eu",
        "db": {"password": MASK, "host": "h"},
    }
    # The same value sealed twice reads differently (a nonce each time) ...
    assert sealer.seal("x", "$.config.x") != sealer.seal("x", "$.config.x")
    # ... but an unchanged config keeps its sealed form, so it compares equal.
    assert sealer.seal_config(config, sealed, PATHS) == sealed
    changed = sealer.seal_config({**config, "api_key": "sk-live-5678"}, sealed, PATHS)
    assert changed["api_key"] != sealed["api_key"]
    assert changed["db"] == sealed["db"]


def test_a_mask_given_back_keeps_the_secret_it_stands_for(sealer: Sealer) -> None:
    stored = sealer.seal_config({"api_key": "sk-live-1234", "region": "eu"}, None, PATHS)
    clear = sealer.reveal({"api_key": MASK, "region": "us"}, stored, PATHS)
    assert clear == {"api_key": "sk-live-1234", "region": "us"}
    with pytest.raises(Invalid) as refused:
        sealer.reveal({"api_key": MASK}, None, PATHS)
    assert refused.value.violations[0].field == "$.config.api_key"


def test_without_the_right_key_nothing_is_sealed_or_opened(tmp_path: Path, sealer: Sealer) -> None:
    sealed = sealer.seal_config({"api_key": "sk"}, None, PATHS)
    keyless = Sealer("")
    with pytest.raises(Unavailable, match=r"\$\.config\.api_key .*CORTEX_SECRETS_KEY"):
        keyless.seal_config({"api_key": "sk"}, None, PATHS)
    # A config without secret values needs no key.
    assert keyless.seal_config({"region": "eu"}, None, PATHS) == {"region": "eu"}
    other = Sealer(str(ensure_key_file(tmp_path / "other.key")))
    with pytest.raises(Unavailable, match="sealed with another key"):
        other.open_config(sealed)


def test_a_key_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("c2hvcnQ=\n")
    with pytest.raises(ValueError, match="5 bytes, not 32"):
        Sealer(str(bad))


def test_sealed_values_found_at_any_depth_go_back_in_place(sealer: Sealer) -> None:
    """How the `kubernetes` driver splits a config between a ConfigMap and a Secret."""
    stored = sealer.seal_config(
        {"api_key": "sk-1", "db": {"password": "pw"}, "tags": ["a"]},
        None,
        [("api_key",), ("db", "password")],
    )
    found = [(path, sealer.open(value, "$")) for path, value in sealed_values(stored)]
    assert sorted(found) == [(("api_key",), "sk-1"), (("db", "password"), "pw")]
    assert put_values(mask(stored), found) == {
        "api_key": "sk-1",
        "db": {"password": "pw"},
        "tags": ["a"],
    }
    with pytest.raises(ValueError, match=r"no place for a secret value at \['nope', 'x'\]"):
        put_values({"a": 1}, [(("nope", "x"), "v")])
