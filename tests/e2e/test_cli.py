"""`cortex status` against a running platform, and the errors a user meets."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.ports import free_port
from tests.support.stack import ADMIN_TOKEN, CORTEX, Stack

pytestmark = pytest.mark.e2e


def cortex(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
    return subprocess.run(
        [CORTEX, *args], env={**full, **env}, capture_output=True, text=True, timeout=60
    )


def test_status_prints_a_table_and_json(stack: Stack) -> None:
    env = {"CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN}
    table = cortex("status", **env)
    assert table.returncode == 0, table.stderr
    assert "gateway" in table.stdout
    assert "NATS: nats://127.0.0.1" in table.stdout

    raw = cortex("status", "--json", **env)
    assert raw.returncode == 0
    assert "gateway" in {s["name"] for s in json.loads(raw.stdout)["services"]}


def test_status_reads_the_token_from_the_data_dir(stack: Stack, tmp_path: object) -> None:
    (stack.data_dir / "admin.token").write_text(ADMIN_TOKEN + "\n")
    done = cortex("status", CORTEX_URL=stack.url, CORTEX_DATA_DIR=str(stack.data_dir))
    assert done.returncode == 0, done.stderr


def test_a_wrong_token_and_a_missing_gateway_are_explained(stack: Stack) -> None:
    wrong = cortex("status", CORTEX_URL=stack.url, CORTEX_TOKEN="nope")
    assert wrong.returncode == 1
    assert "refused the token" in wrong.stderr
    assert "CORTEX_TOKEN" in wrong.stderr

    down = cortex("status", CORTEX_URL=f"http://127.0.0.1:{free_port()}", CORTEX_TOKEN="x")
    assert down.returncode == 1
    assert "cannot reach the gateway" in down.stderr
    assert "Traceback" not in down.stderr


def test_a_bad_setting_is_named(stack: Stack) -> None:
    done = cortex("status", CORTEX_HTTP_PORT="eighty")
    assert done.returncode == 2
    assert "CORTEX_HTTP_PORT" in done.stderr
