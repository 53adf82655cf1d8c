"""The OpenAPI document is true: schemathesis, with every check, finds nothing against a live
gateway.

Schemathesis reads `/api/v1/openapi.json` as an outsider would, sends what the document allows
(and what it forbids) to every operation, and checks each answer against the document: status
codes, content types, headers and bodies declared; valid requests accepted and invalid ones
refused; `Allow` on 405; ... A finding is a place where the document and the gateway disagree.

The run is small and repeatable (few examples per operation, a fixed seed, no shrinking, no
example database) and has a platform of its own: it creates and deletes what it likes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.stack import ADMIN_TOKEN, Stack

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")

SSE_PATHS = [
    "/api/v1/events",
    "/api/v1/dlq/events",
    "/api/v1/agents/{ref}/messages/events",
    "/api/v1/logs/stream",
    "/api/v1/executions/{execution_id}/events",
]
"""Server-sent event streams: read for a quarter of a second at most, or until the first event
came (a stream that has one sends it at once)."""

EXCLUDED: list[tuple[str, str, str, str]] = [
    # (method, path, check, why)
    (
        "GET",
        "/api/v1/dlq",
        "positive_data_acceptance",
        "`after` must be the id of a dead letter the platform has held: a rule about the "
        "data, which no schema can state; the document says so and that any other is a 422",
    ),
    (
        "POST",
        "/api/v1/templates",
        "positive_data_acceptance",
        "a template's handler must be an agent class this platform may load (its settings "
        "say from where) and its default config must satisfy its own config schema: rules "
        "about the data, stated in the operation's description",
    ),
    (
        "POST",
        "/api/v1/workflow-templates",
        "positive_data_acceptance",
        "a workflow template's steps reference each other and its parameters, and its "
        "durations and expressions must parse: rules about the data, stated in the "
        "operation's description",
    ),
    (
        "POST",
        "/api/v1/agents/{ref}/messages",
        "positive_data_acceptance",
        "`wait` and `confirm` exclude each other: OpenAPI cannot relate two parameters "
        "(JSON Schema sees one at a time); the description states it",
    ),
]
"""The only exceptions, each one check of one operation, for a reason no document can fix."""

CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "use_after_free",
    "ensure_resource_availability",
    "ignored_auth",
    "object_level_authorization",
}
"""Every check of schemathesis 4 (`--checks all`); each must have run."""

MAX_EXAMPLES = 4
SEED = 20261130


def config(report: Path) -> str:
    lines = [
        f"seed = {SEED}",
        "request-timeout = 10",
        "max-stream-events = 1",
        "warnings = false",
        "[cache]",
        "enabled = false",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "no-shrink = true",
        "deterministic = true",
        'database = "none"',
        "[reports.ndjson]",
        "enabled = true",
        f'path = "{report}"',
    ]
    for path in SSE_PATHS:
        # A quiet stream sends no event: it is read for as long as the request may take.
        lines += ["[[operations]]", f'include-path = "{path}"', "request-timeout = 0.25"]
    for method, path, check, _why in EXCLUDED:
        lines += [
            "[[operations]]",
            f'include-path = "{path}"',
            f'include-method = "{method}"',
            f"checks.{check}.enabled = false",
        ]
    return "\n".join(lines) + "\n"


def quiet_stream(error: dict[str, Any] | None) -> bool:
    """A live stream that had nothing to send within its read time: no fault of the gateway
    (a log stream waits for the next line); what it sends is checked whenever it sends."""
    if not error:
        return False
    streams = {f"GET {path}" for path in SSE_PATHS}
    return error.get("label") in streams and error["value"]["type"] == "ReadTimeout"


def findings(report: Path) -> tuple[int, set[str], list[str], int]:
    """The requests schemathesis made, the checks it ran, each (check, operation, failure) it
    found, and how many quiet streams it counted as errors."""
    requests = 0
    quiet = 0
    ran: set[str] = set()
    found: set[str] = set()
    for line in report.read_text().splitlines():
        event: dict[str, Any] = json.loads(line)
        if quiet_stream(event.get("NonFatalError")):
            quiet += 1
        elif "NonFatalError" in event or "FatalError" in event:
            found.add(f"error: {json.dumps(event)[:500]}")
        finished = event.get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished["recorder"]
        requests += sum(1 for i in (recorder.get("interactions") or {}).values() if i)
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                ran.add(check["name"])
                if check["status"] != "failure":
                    continue
                failure = check["failure_info"]["failure"]
                request = (recorder.get("interactions") or {}).get(case_id, {}).get("request", {})
                found.add(
                    f"{check['name']} on {recorder['label']}: {failure['title']}: "
                    f"{(failure['message'] or '').strip()[:300]} "
                    f"({request.get('method', '')} {request.get('uri', '')})"
                )
    return requests, ran, sorted(found), quiet


def test_schemathesis_with_every_check_finds_nothing(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "stack").start()
    try:
        report = tmp_path / "schemathesis.ndjson"
        settings = tmp_path / "schemathesis.toml"
        settings.write_text(config(report))
        began = time.monotonic()
        run = subprocess.run(
            [
                SCHEMATHESIS,
                "--config-file",
                str(settings),
                "--no-color",
                "run",
                f"{stack.url}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {ADMIN_TOKEN}",
                # Every check is on by default. Not `--checks all`: checks named on the command
                # line win over the configuration's exceptions for one operation (`EXCLUDED`).
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        took = time.monotonic() - began
    finally:
        stack.stop()
    assert report.exists(), f"schemathesis did not run:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    requests, ran, found, quiet = findings(report)
    summary = f"{requests} requests in {took:.0f}s, {len(found)} findings"
    print(summary)
    assert requests > 0, f"schemathesis sent nothing:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert not CHECKS - ran, f"checks that never ran: {sorted(CHECKS - ran)}"
    assert not found, summary + ":\n" + "\n".join(found) + "\n\n" + run.stdout[-5000:]
    # Schemathesis exits 1 for a quiet stream's read timeout too: only then is 1 a pass.
    assert run.returncode == 0 or (run.returncode == 1 and quiet), run.stdout[-5000:]
