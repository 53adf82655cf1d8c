"""The kinds `GET /api/v1/events` takes are the kinds of stream the services record."""

from __future__ import annotations

from typing import get_args

from cortex.contracts.changes import ChangeKind
from cortex.lifecycle import domain as lifecycle
from cortex.messaging import subscription_domain
from cortex.registry import domain as registry
from cortex.registry import state_domain
from cortex.workflow import domain as workflow


def test_every_kind_a_service_records_can_be_asked_for_and_no_other() -> None:
    lifecycle_kinds = {
        stream("x").partition("-")[0]
        for stream in (
            lifecycle.template_stream,
            lifecycle.name_stream,
            lifecycle.agent_stream,
            lifecycle.pool_stream,
        )
    }
    recorded = lifecycle_kinds | {
        registry.STREAM_TYPE,
        state_domain.STREAM_TYPE,
        subscription_domain.STREAM_TYPE,
        workflow.TEMPLATE,
        workflow.WORKFLOW,
        workflow.EXECUTION,
    }
    assert recorded == set(get_args(ChangeKind))
