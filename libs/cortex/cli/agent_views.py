"""How agents and their instances read in a terminal; shared by the `agents` commands."""

from __future__ import annotations

from typing import Any

from cortex.cli.client import GatewayClient
from cortex.cli.output import age, ago, compact_json, print_fields, print_table

Agent = dict[str, Any]


def template_ref(agent: Agent) -> str:
    return f"{agent['template']}@{agent['template_version']}"


def ready(agent: Agent) -> str:
    return f"{agent.get('ready_replicas', 0)}/{agent['replicas']}"


def labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def short(text: str | None, width: int = 60) -> str:
    """One line of at most `width` characters: a traceback's last line fits a table cell."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def print_agents(items: list[Agent]) -> None:
    print_table(
        None,
        ["NAME", "STATUS", "READY", "TEMPLATE", "AGE", "ID"],
        [
            (a["name"], a["status"], ready(a), template_ref(a), age(a["created_at"]), a["id"])
            for a in items
        ],
    )


def print_agent(agent: Agent) -> None:
    status = agent["status"]
    if agent.get("status_reason"):
        status += f" ({agent['status_reason']})"
    print_fields(
        [
            ("Name", agent["name"]),
            ("ID", agent["id"]),
            ("Status", status),
            ("Template", template_ref(agent)),
            ("Replicas", f"{ready(agent)} ready"),
            ("Labels", labels_text(agent.get("labels") or {})),
            ("Config", compact_json(agent["config"])),
            ("Created", f"{agent['created_at']} ({ago(agent['created_at'])})"),
            ("Updated", f"{agent['updated_at']} ({ago(agent['updated_at'])})"),
        ]
    )


def print_instances(items: list[dict[str, Any]], *, with_agent: bool = False) -> None:
    columns = ["ID", "HOST", "HEALTH", "STATE", "INFLIGHT", "LAST ERROR"]
    rows = [
        [i["id"], i["host_id"], i["health"], i["state"], i["inflight"], short(i.get("last_error"))]
        for i in items
    ]
    if with_agent:  # `cortex instances` spans agents; `agents get` is about one
        columns[1:1] = ["AGENT"]
        columns[-1:-1] = ["HANDLED", "LAST SEEN"]
        for row, i in zip(rows, items, strict=True):
            row[1:1] = [i["agent_name"]]
            row[-1:-1] = [i["handled"], ago(i.get("last_seen"))]
    print_table(None if with_agent else "Instances", columns, rows)


def fetch_pages(
    client: GatewayClient, path: str, params: dict[str, Any], everything: bool
) -> dict[str, Any]:
    """One page, or with `everything` all of them (following `next`) merged into one."""
    page: dict[str, Any] = client.get(path, **params)
    items = list(page["items"])
    while everything and page.get("next"):
        page = client.get(path, **{**params, "after": page["next"]})
        items += page["items"]
    return {**page, "items": items}
