"""The gateway over HTTPS, with a CA and certificate the test makes: `cortex up` waits for it,
the API and the CLI reach it when they trust the CA, and nothing is served in the clear."""

from __future__ import annotations

import os
import ssl
import subprocess
from pathlib import Path

import httpx
import nats
import pytest
import trustme

from tests.support.polling import eventually
from tests.support.stack import ADMIN_TOKEN, CORTEX, Stack

pytestmark = pytest.mark.e2e


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A new CA, and a certificate for 127.0.0.1 it issued: (chain, key, CA) as PEM files."""
    ca = trustme.CA()
    served = ca.issue_cert("127.0.0.1", "localhost")
    chain, key, ca_file = folder / "chain.pem", folder / "key.pem", folder / "ca.pem"
    chain.write_bytes(b"".join(blob.bytes() for blob in served.cert_chain_pems))
    key.write_bytes(served.private_key_pem.bytes())
    ca.cert_pem.write_to_path(str(ca_file))
    return chain, key, ca_file


def test_the_gateway_serves_https_only_and_the_cli_trusts_the_configured_ca(
    tmp_path: Path,
) -> None:
    chain, key, ca_file = certificates(tmp_path)

    stack = Stack(
        tmp_path / "stack",
        CORTEX_TLS_CERT=str(chain),
        CORTEX_TLS_KEY=str(key),
        CORTEX_TLS_CA=str(ca_file),
    ).start()
    try:
        assert stack.url.startswith("https://")
        assert f"API          {stack.url}/api/v1" in stack.output
        with stack.client() as api:
            assert api.get("/api/v1/whoami").json() == {"name": "admin", "role": "admin"}
        # A client that does not trust the CA is refused the handshake.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{stack.url}/api/v1/health")
        # Nothing answers in the clear on the gateway's port.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{stack.http_port}/api/v1/health", timeout=5)

        env = {k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")}
        env |= {"CORTEX_URL": stack.url, "CORTEX_TOKEN": ADMIN_TOKEN}
        trusting = subprocess.run(
            [CORTEX, "hosts", "--json"],
            env=env | {"CORTEX_TLS_CA": str(ca_file)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert trusting.returncode == 0, trusting.stderr
        assert trusting.stdout.lstrip().startswith("[")
        doubting = subprocess.run(
            [CORTEX, "hosts"], env=env, capture_output=True, text=True, timeout=60
        )
        assert doubting.returncode != 0
        assert "Traceback" not in doubting.stderr
        assert "certificate this machine does not trust" in doubting.stderr
        assert "CORTEX_TLS_CA" in doubting.stderr
    finally:
        stack.stop()


def test_a_certificate_without_its_key_stops_cortex_up_with_the_reason(tmp_path: Path) -> None:
    cert = tmp_path / "chain.pem"
    cert.write_text("not used")
    stack = Stack(tmp_path / "stack", CORTEX_TLS_CERT=str(cert))
    with pytest.raises(RuntimeError, match="CORTEX_TLS_CERT and CORTEX_TLS_KEY go together"):
        stack.start(timeout=30)


async def test_every_connection_to_nats_uses_tls_when_nats_has_a_certificate(
    tmp_path: Path,
) -> None:
    chain, key, ca_file = certificates(tmp_path)

    stack = Stack(
        tmp_path / "stack",
        CORTEX_NATS_TLS_CERT=str(chain),
        CORTEX_NATS_TLS_KEY=str(key),
        CORTEX_NATS_TLS_CA=str(ca_file),
    ).start()
    try:
        # Every service and the agent host reached NATS: an agent answers through them all.
        with stack.client() as api:
            made = api.post(
                "/api/v1/agents", json={"name": "tls-echo", "template": "echo", "deploy": True}
            )
            assert made.status_code == 201, made.text
            eventually(
                lambda: api.get("/api/v1/agents/tls-echo").json()["status"] == "running",
                what="the agent running",
            )
            answer = api.post(
                "/api/v1/agents/tls-echo/messages", params={"wait": 10}, json={"payload": "hi"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["reply"]["payload"] == "hi"

        # The server requires TLS (nats-py then tries it on its own): a client that does not
        # trust the CA gets no connection.
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await nats.connect(
                stack.nats_url, allow_reconnect=False, connect_timeout=2, max_reconnect_attempts=0
            )
        secure = await stack.nats_connect(
            allow_reconnect=False, tls=ssl.create_default_context(cafile=str(ca_file))
        )
        try:
            info = await secure.request("$JS.API.INFO", b"", timeout=5)
            assert b'"type":"io.nats.jetstream.api.v1.account_info_response"' in info.data
        finally:
            await secure.close()
    finally:
        stack.stop()
