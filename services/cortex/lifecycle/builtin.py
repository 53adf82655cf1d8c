"""Templates that ship with the platform, registered (idempotently) at every start."""

from __future__ import annotations

from cortex.contracts.lifecycle import TemplateSpec

BUILTIN_TEMPLATES = [
    TemplateSpec(
        name="echo",
        version="1",
        description="Replies with exactly what it got (same payload, same content type).",
        handler="cortex.sdk.builtin:Echo",
        concurrency=16,
    ),
    TemplateSpec(
        name="counter",
        # 2: the count lives in the agent's state (1 kept it in memory).
        version="2",
        description='Counts the messages it handled and replies {"count": n}; '
        'a JSON {"by": n} adds n. The count is the agent\'s state: it survives redeploys.',
        handler="cortex.sdk.builtin:Counter",
        config_schema={
            "type": "object",
            "properties": {"start": {"type": "integer", "description": "First value."}},
            "additionalProperties": False,
        },
        default_config={"start": 0},
    ),
]
