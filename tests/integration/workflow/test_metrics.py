"""What a workflow run with retries counts: its steps and retries, and its agent's messages."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.integration.workflow.conftest import Stack
from tests.integration.workflow.test_retries import flaky
from tests.support.polling import settled


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def figures() -> dict[str, float]:
    by_template = {"template": "wf-worker", "agent": ""}
    return {
        "retries": sample("cortex_workflow_step_retries_total", type="agent"),
        "attempts": sample("cortex_workflow_step_duration_seconds_count", type="agent"),
        "succeeded": sample("cortex_workflow_executions_total", status="succeeded"),
        "delivered": sample("cortex_messages_delivered_total", **by_template),
        "failed": sample("cortex_messages_failed_total", **by_template),
        "acked": sample("cortex_messages_acked_total", **by_template),
    }


async def test_retries_and_the_agents_failures_are_counted(stack: Stack) -> None:
    await stack.agent("wf-worker", "wf-worker")
    await stack.register(flaky("flaky-counted", 3, "counted"))
    before = figures()

    view = await stack.run("flaky-counted")

    assert view.status == "succeeded", view.error
    expected = {
        "retries": 2,
        "attempts": 3,
        "succeeded": 1,
        "delivered": 3,
        "failed": 2,
        "acked": 1,
    }

    async def counted() -> dict[str, float]:
        after = figures()
        return {k: after[k] - before[k] for k in before}

    # Two failed attempts, two retries, the third attempt succeeds. A counter moves just after
    # the change it counts is stored (the runner resumes after its append), as a scraper sees
    # it a moment later: the test waits for the figures, a little.
    await settled(counted, lambda deltas: deltas == expected, timeout=5.0)
