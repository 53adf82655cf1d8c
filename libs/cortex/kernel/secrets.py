"""Secret config values: sealed before they are stored, opened only where an agent runs.

A template marks a config field secret with the JSON Schema annotation `"writeOnly": true`. The
lifecycle service seals such a value (XSalsa20-Poly1305, `nacl.secret.SecretBox`) before it
goes into an event, so the event store, `CORTEX_EVENTS` and the start requests to hosts carry
only `cortex-sealed:v1:<base64>`; the agent host opens it for the agent's `self.config`. Views
show `***` in its place, and `***` given back in an update keeps the value it stands for.

The key is a file (`CORTEX_SECRETS_KEY`) that only the lifecycle service and the agent hosts
read; `cortex up` makes it in the data directory, mode 0600 (docs/security.md).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import nacl.exceptions
import nacl.secret
import nacl.utils

from cortex.kernel.errors import Invalid, Unavailable
from cortex.kernel.tokens import write_private

SEALED = "cortex-sealed:v1:"
MASK = "***"
"""What a view shows for a secret value, and what an update gives back to keep it."""

FieldPath = tuple[str, ...]


def secret_paths(schema: Mapping[str, Any], at: FieldPath = ()) -> Iterator[FieldPath]:
    """The config fields the schema marks `writeOnly`, through nested objects' `properties`."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    for name, sub in properties.items():
        if not isinstance(sub, Mapping):
            continue
        if sub.get("writeOnly") is True:
            yield (*at, name)
        else:
            yield from secret_paths(sub, (*at, name))


def field_name(path: FieldPath, root: str = "$.config") -> str:
    return root + "".join(f".{part}" for part in path)


_MISSING = object()


def _get(doc: Any, path: FieldPath) -> Any:
    for part in path:
        if not isinstance(doc, Mapping) or part not in doc:
            return _MISSING
        doc = doc[part]
    return doc


def has_path(doc: Any, path: FieldPath) -> bool:
    return _get(doc, path) is not _MISSING


def _set(doc: dict[str, Any], path: FieldPath, value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED)


def mask(value: Any) -> Any:
    """`value` with every sealed string shown as `***` (views, events sent to clients)."""
    if is_sealed(value):
        return MASK
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def has_sealed(value: Any) -> bool:
    if is_sealed(value):
        return True
    if isinstance(value, dict):
        return any(has_sealed(v) for v in value.values())
    if isinstance(value, list):
        return any(has_sealed(v) for v in value)
    return False


def ensure_key_file(path: Path) -> Path:
    """A key made once (32 random bytes, base64) and kept: sealed values outlive restarts."""
    if not path.exists():
        key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
        write_private(path, base64.b64encode(key).decode() + "\n")
    return path


class Sealer:
    """Seals and opens secret values with one key; without a key it refuses both, saying why."""

    def __init__(self, key_file: str) -> None:
        self._source = key_file
        self._box: nacl.secret.SecretBox | None = None
        if key_file:
            key = base64.b64decode(Path(key_file).read_text().strip(), validate=True)
            if len(key) != nacl.secret.SecretBox.KEY_SIZE:
                raise ValueError(
                    f"CORTEX_SECRETS_KEY: {key_file} holds {len(key)} bytes, not "
                    f"{nacl.secret.SecretBox.KEY_SIZE} (base64)"
                )
            self._box = nacl.secret.SecretBox(key)

    def _require(self, field: str) -> nacl.secret.SecretBox:
        if self._box is None:
            raise Unavailable(
                f"{field} is a secret field, and this process has no key to seal or open it: "
                "set CORTEX_SECRETS_KEY (cortex up does)",
                details={"field": field},
            )
        return self._box

    def seal(self, value: Any, field: str) -> str:
        box = self._require(field)
        sealed = box.encrypt(msgspec.json.encode(value))
        return SEALED + base64.urlsafe_b64encode(bytes(sealed)).decode()

    def open(self, sealed: str, field: str) -> Any:
        box = self._require(field)
        try:
            clear = box.decrypt(base64.urlsafe_b64decode(sealed.removeprefix(SEALED)))
        except (nacl.exceptions.CryptoError, ValueError):
            raise Unavailable(
                f"{field} was sealed with another key than CORTEX_SECRETS_KEY "
                f"({self._source}) holds",
                details={"field": field},
            ) from None
        return msgspec.json.decode(clear)

    def reveal(
        self, config: Mapping[str, Any], previous: Mapping[str, Any] | None, paths: list[FieldPath]
    ) -> dict[str, Any]:
        """`config` as given, with each `***` at a secret field replaced by the value it
        stands for in `previous` (the stored config): what the schema checks."""
        clear = copy.deepcopy(dict(config))
        for path in paths:
            if _get(clear, path) != MASK:
                continue
            kept = _get(previous or {}, path)
            if not is_sealed(kept):
                raise Invalid.field(
                    field_name(path),
                    f"`{MASK}` stands for a secret this agent does not have; give the value",
                )
            _set(clear, path, self.open(kept, field_name(path)))
        return clear

    def seal_config(
        self, config: Mapping[str, Any], previous: Mapping[str, Any] | None, paths: list[FieldPath]
    ) -> dict[str, Any]:
        """`config` (clear, checked) with each secret field sealed. A value equal to the one
        `previous` holds keeps its sealed form, so an unchanged config compares equal."""
        sealed = copy.deepcopy(dict(config))
        for path in paths:
            value = _get(sealed, path)
            if value is _MISSING:
                continue
            name = field_name(path)
            kept = _get(previous or {}, path)
            if is_sealed(kept) and self.open(kept, name) == value:
                _set(sealed, path, kept)
            else:
                _set(sealed, path, self.seal(value, name))
        return sealed

    def open_config(self, value: Any, at: str = "$.config") -> Any:
        """`value` with every sealed string opened (where the agent runs)."""
        if is_sealed(value):
            return self.open(value, at)
        if isinstance(value, dict):
            return {k: self.open_config(v, f"{at}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.open_config(v, f"{at}[{i}]") for i, v in enumerate(value)]
        return value


ValuePath = tuple[str | int, ...]
"""Where a value sits in a config: keys of objects and indexes of lists."""


def sealed_values(value: Any, at: ValuePath = ()) -> Iterator[tuple[ValuePath, str]]:
    """Every sealed string in `value`, with where it is."""
    if is_sealed(value):
        yield at, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from sealed_values(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from sealed_values(v, (*at, i))


def put_values(config: dict[str, Any], values: list[tuple[ValuePath, Any]]) -> dict[str, Any]:
    """`config` with each value put at its path (the secret values of a config whose clear
    part came another way, as in the `kubernetes` driver's pods)."""
    merged = copy.deepcopy(config)
    for path, value in values:
        doc: Any = merged
        try:
            for part in path[:-1]:
                doc = doc[part]
            doc[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"no place for a secret value at {list(path)} in the config") from None
    return merged
