"""The `kubernetes` driver when the API server cannot be reached or refuses: the official
client against a real closed port (no cluster is needed to be unreachable). What the driver
then says becomes the agents' status reason; nothing raises into the reconciler."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from kubernetes.aio.client import ApiException

from cortex.kernel.secrets import Sealer
from cortex.lifecycle.drivers.kubernetes import KubernetesDriver, explain
from cortex.lifecycle.drivers.kubernetes_objects import PodSettings
from cortex.lifecycle.drivers.port import StartRequest
from tests.support import lifecycle_records as records
from tests.support.kubeconfig import kubeconfig
from tests.support.ports import free_port


async def test_an_unreachable_api_server_blinds_the_driver_and_fails_no_start_as_the_agents(
    tmp_path: Path,
) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    driver = KubernetesDriver(
        PodSettings(namespace="agents"), Sealer(""), str(kubeconfig(tmp_path / "kc", server))
    )
    await driver.open()
    try:
        deadline = time.monotonic() + 10
        seen = await driver.observe()
        while "could not be reached" not in (seen.blind or ""):
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.05)
            seen = await driver.observe()
        assert seen.instances == []
        assert "list pods in namespace agents" in (seen.blind or "")

        request = StartRequest(
            agent=records.agent(), template=records.template(), count=1, config={}, config_at=None
        )
        placements, failures = await driver.start([request], seen, {})
        assert placements == []
        [failure] = failures
        assert failure.agent_fault is False
        assert failure.error.startswith(
            "the Kubernetes API could not be reached to start a replica of summarizer-eu"
        )
    finally:
        await asyncio.wait_for(driver.close(), 5)


async def test_a_client_that_cannot_be_configured_blinds_the_driver_saying_why(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    driver = KubernetesDriver(PodSettings(namespace="agents"), Sealer(""), str(missing))
    await driver.open()
    seen = await driver.observe()
    assert f"cannot be configured from {missing}" in (seen.blind or "")
    await driver.close()
    # Outside a pod, the in-cluster configuration is missing in the same way.
    inside = KubernetesDriver(PodSettings(namespace="agents"), Sealer(""))
    await inside.open()
    assert "in-cluster" in ((await inside.observe()).blind or "")
    await inside.close()


@pytest.mark.parametrize(
    ("status", "reason", "says"),
    [
        (403, "Forbidden", "refused to create pods (403 Forbidden): pods is forbidden"),
        (422, "Unprocessable Entity", "did not create pods (422 Unprocessable Entity)"),
    ],
)
def test_a_refusal_says_what_was_refused_and_what_to_check(
    status: int, reason: str, says: str
) -> None:
    body = '{"kind": "Status", "message": "pods is forbidden: User cannot create"}'
    message = explain(ApiException(status=status, reason=reason, body=body), "create pods")
    assert says in message
    assert ("the lifecycle service's Role" in message) is (status == 403)
