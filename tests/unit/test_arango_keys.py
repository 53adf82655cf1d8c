"""Meta keys as ArangoDB document keys: valid for any key, and within its 254 bytes (a key of
more than 126 bytes used to become a document key ArangoDB refuses)."""

from __future__ import annotations

import re

from cortex.kernel.store.arangodb import MAX_KEY, _meta_key

VALID = re.compile(r"^[A-Za-z0-9_\-:.@()+,=;$!*'%]+$")


def test_a_short_key_keeps_the_form_stores_already_hold() -> None:
    assert _meta_key("relay:checkpoint") == "k" + b"relay:checkpoint".hex()


def test_any_key_of_any_length_is_a_valid_distinct_document_key() -> None:
    keys = ["", "a", "x" * 126, "x" * 127, "é/ ?#" * 40, "y" * 5000, "y" * 4999 + "z"]
    made = [_meta_key(k) for k in keys]
    assert len(set(made)) == len(keys)
    for key in made:
        assert 0 < len(key.encode()) <= MAX_KEY
        assert VALID.match(key), key
    assert made[2].startswith("k")  # 126 bytes: still hex
    assert made[3].startswith("h")  # 127 bytes: hashed
