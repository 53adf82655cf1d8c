"""The dashboard as an operator uses it: Debian's chromium, driven by Playwright, against
`cortex up` serving the built app. One sitting: sign in, create an agent from the form its
template's config schema makes, deploy it and see it run without a reload, send it a message and
read the reply, scale it, run a workflow and watch its timeline complete, replay a dead letter,
find the agent's log lines, read the metrics charts, make a viewer's API token. Every view is
checked with axe-core (no serious or critical violation) and photographed: into
CORTEX_SCREENSHOTS when set (`docs/dashboard` refreshes the pictures of docs/dashboard.md), else
into the test's own folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.polling import eventually, until
from tests.support.stack import ADMIN_TOKEN, FAST_HEALTH, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "services" / "dashboard"
AXE = DASHBOARD / "node_modules" / "axe-core" / "axe.min.js"
# Debian's wrapper script may print a harmless /dev/shm complaint; the binary is beside it.
CHROMIUM = next(
    (
        p
        for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "")
        if p and os.path.exists(p)
    ),
    None,
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LIVE = 30_000
"""Milliseconds the browser waits for a change to show up without a reload."""

GREETER = {
    "name": "dash-greeter",
    "handler": "tests.support.sample_agents:Narrator",
    "description": "Narrates what it is told",
    "config_schema": {
        "type": "object",
        "properties": {
            "greeting": {"type": "string", "minLength": 3, "description": "What it says"},
            "loud": {"type": "boolean"},
        },
    },
}
FLAKY = {"name": "dash-flaky", "handler": "tests.support.sample_agents:Flaky", "max_deliveries": 1}
FLOW = {
    "name": "dash-flow",
    "params": {"type": "object", "properties": {"text": {"type": "string"}}},
    "steps": [
        {
            "id": "first",
            "type": "agent",
            "agent": "dash-agent",
            "input": {"text": "${params.text}"},
        },
        {
            "parallel": [
                {"id": "left", "type": "agent", "agent": "dash-agent", "input": {"text": "l"}},
                {"id": "right", "type": "agent", "agent": "dash-agent", "input": {"text": "r"}},
            ]
        },
    ],
}


def why_no_browser() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed: run `make debian-packages` (apt-get, as root)"
    if not (DASHBOARD / "dist" / "index.html").exists():
        return "the dashboard is not built: run `make dashboard`"
    if not AXE.exists():
        return "the dashboard's node_modules are missing: run `make dashboard`"
    return None


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if reason := why_no_browser():
        pytest.skip(reason)
    stack = Stack(
        tmp_path_factory.mktemp("dashboard"),
        CORTEX_AGENT_PATH=str(REPO),
        CORTEX_METRICS_HISTORY_INTERVAL="1",
        **FAST_HEALTH,
    ).start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CORTEX_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class View:
    """The page, with what every view gets: an accessibility check and a screenshot."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.seen: list[str] = []

    def check(self, name: str) -> None:
        self.page.wait_for_load_state("networkidle")
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(AXE))
        found = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
        )
        serious = [v for v in found if v["impact"] in ("serious", "critical")]
        assert not serious, f"{name}: accessibility violations {serious}"
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000, f"{name}: a blank screenshot"
        self.seen.append(name)


def prepare(stack: Stack) -> str:
    """What the operator finds: templates, and an agent whose message is dead-lettered (its
    id is returned)."""
    with stack.client() as api:
        for template in (GREETER, FLAKY):
            created = api.post("/api/v1/templates", json=template)
            assert created.status_code == 201, created.text
        flaky = api.post(
            "/api/v1/agents",
            json={"name": "dash-flaky", "template": "dash-flaky", "config": {"fail": True}},
        )
        assert flaky.status_code == 201, flaky.text
        assert api.post("/api/v1/agents/dash-flaky/deploy").status_code == 202
        dead = api.post(
            "/api/v1/agents/dash-flaky/messages", params={"confirm": 30}, json={"payload": "job"}
        )
        assert dead.json()["status"] == "dead_lettered", dead.text
        # The bug is fixed in the config, whose new replicas make a replay succeed.
        # The registry lists an instance from its host's next heartbeat on.
        before = until(
            lambda: (
                bool(
                    ids := {
                        i["id"] for i in api.get("/api/v1/agents/dash-flaky").json()["instances"]
                    }
                ),
                ids,
            ),
            "dash-flaky's first replica listed",
        )
        fixed = api.put("/api/v1/agents/dash-flaky", json={"config": {"fail": False}})
        assert fixed.status_code in (200, 202), fixed.text

        def replaced() -> tuple[bool, Any]:
            view = api.get("/api/v1/agents/dash-flaky").json()
            fresh = [
                i
                for i in view["instances"]
                if i["id"] not in before and i["health"] == "healthy" and i["state"] == "running"
            ]
            return view["status"] == "running" and len(fresh) == len(view["instances"]) == 1, view

        until(replaced, "dash-flaky's replicas with the new config")
        assert api.post("/api/v1/workflow-templates", json=FLOW).status_code in (200, 201)
    return str(dead.json()["id"])


def test_an_operator_runs_the_fleet_from_the_browser(
    platform: Stack, browser: Any, shots: Path
) -> None:
    from playwright.sync_api import expect

    dead_letter = prepare(platform)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(LIVE)
    expect.set_options(timeout=LIVE)
    view = View(page, shots)
    try:
        # Sign in: an unknown visitor lands on the sign-in page.
        page.goto(platform.url + "/agents")
        expect(page.get_by_label("API token")).to_be_visible()
        view.check("signin")
        page.get_by_label("API token").fill(ADMIN_TOKEN)
        page.get_by_role("button", name="Sign in").click()
        # Back where the visitor was going.
        expect(page.get_by_role("heading", name="Agents", level=1)).to_be_visible()
        page.get_by_role("link", name="Overview", exact=True).click()
        expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
        expect(page.get_by_role("heading", name="Agents by status")).to_be_visible()
        # NATS's streams, as the gateway reads them.
        streams = page.get_by_role("region", name="NATS streams")
        expect(streams.get_by_role("cell", name="CORTEX_MSGS", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Messages per second")).to_be_visible()
        view.check("overview")

        # Create an agent from the form the template's config schema makes.
        page.get_by_role("link", name="Agents", exact=True).click()
        page.get_by_role("button", name="Create agent").click()
        form = page.get_by_role("region", name="Create agent")
        form.get_by_label("Template").select_option("dash-greeter")
        form.get_by_label("Name", exact=True).fill("dash-agent")
        greeting = form.get_by_label(re.compile(r"^greeting"))
        greeting.fill("x")
        create = form.get_by_role("button", name="Create", exact=True)
        create.click()
        # The schema wants three characters or more: the API's error shows at that field.
        expect(
            page.get_by_text(re.compile(r"too short|at least 3|minLength", re.I))
        ).to_be_visible()
        greeting.fill("hello")
        view.check("agent-create")
        create.click()
        expect(page.get_by_role("heading", name="dash-agent", level=1)).to_be_visible()

        # Deploy, and see it turn running without a reload.
        page.get_by_role("button", name="Deploy", exact=True).click()
        summary = page.get_by_role("region", name="Summary")
        expect(summary.get_by_text("running", exact=True)).to_be_visible()

        # Send a message and read the reply.
        page.get_by_label("Message payload").fill('{"text": "hi from the browser"}')
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_role("region", name="Reply")).to_contain_text("told")
        # ... and find it among the agent's messages, handled.
        messages = page.get_by_role("table", name="Messages of this agent")
        handled = messages.get_by_role("row").filter(has_text="acked")
        expect(handled).to_have_count(1)
        expect(handled).to_contain_text("dash-agent")  # to the agent, by name

        # The gateway dies and comes back (cortex up restarts it): the page's stream reconnects
        # and resumes after the last change it saw, so a change made meanwhile still shows.
        platform.kill("gateway")
        with platform.client() as api:
            eventually(lambda: api.get("/api/v1/agents/dash-agent").status_code == 200, what="back")
            relabel = api.put("/api/v1/agents/dash-agent", json={"labels": {"stage": "restarted"}})
            assert relabel.status_code == 200, relabel.text
        expect(summary).to_contain_text("stage=restarted", timeout=30_000)

        # Scale to two, and see both ready.
        page.get_by_label("Replicas", exact=True).fill("2")
        page.get_by_role("button", name="Scale", exact=True).click()
        expect(summary).to_contain_text(re.compile(r"2\s*/\s*2"))
        view.check("agent-detail")

        # The list, filtered on the server by a part of the name.
        page.get_by_role("link", name="Agents", exact=True).click()
        expect(page.get_by_role("link", name="dash-flaky")).to_be_visible()
        page.get_by_label("Name contains").fill("H-AG")
        page.get_by_role("button", name="Apply filters").click()
        expect(page.get_by_role("link", name="dash-flaky")).to_have_count(0)
        expect(page.get_by_role("link", name="dash-agent")).to_be_visible()
        view.check("agents")

        # Run a workflow and watch its timeline complete live.
        page.get_by_role("link", name="Workflows", exact=True).click()
        page.get_by_text("Start a workflow").click()
        page.get_by_label("Workflow template", exact=True).select_option("dash-flow")
        page.get_by_label("Parameters (JSON)").fill('{"text": "go"}')
        page.get_by_role("button", name="Create and run").click()
        expect(page.get_by_role("heading", name="Execution of dash-flow")).to_be_visible()
        execution = page.get_by_role("region", name="Summary")
        expect(execution.get_by_text("succeeded", exact=True)).to_be_visible()
        # The parallel group's two steps in two lanes, each step with its outcome.
        lanes = page.get_by_role("region", name="Timeline").get_by_role("listitem")
        expect(lanes).to_have_count(2)
        expect(lanes.first).to_contain_text("first succeeded")
        expect(page.get_by_role("region", name="Timeline")).to_contain_text("left succeeded")
        expect(page.get_by_role("region", name="Timeline")).to_contain_text("right succeeded")
        view.check("execution")
        page.get_by_role("link", name="Workflows", exact=True).click()
        view.check("workflows")

        # Replay the dead letter: it leaves the list, and the message is handled.
        page.get_by_role("link", name="Dead letters", exact=True).click()
        rows = page.get_by_role("row").filter(has_text="upstream API rejected the request")
        expect(rows).to_have_count(1)
        expect(rows.get_by_role("link", name="dash-flaky")).to_be_visible()  # named, not an id
        rows.get_by_role("button", name=re.compile("Show the payload")).click()
        expect(rows.locator("code.preview")).to_have_text("job")
        view.check("dead-letters")
        rows.get_by_role("button", name="Replay").click()
        expect(rows).to_have_count(0)

        # Find the agent's log lines.
        page.get_by_role("link", name="Logs", exact=True).click()
        page.get_by_label("Agent", exact=True).fill("dash-agent")
        page.get_by_label("Text", exact=True).fill("narrating")
        page.get_by_role("button", name="Search").click()
        line = page.get_by_role("listitem").filter(has_text="narrating").first
        expect(line).to_contain_text("agent=dash-agent")
        view.check("logs")

        # The charts of what happened, from the gateway's own samples.
        page.get_by_role("link", name="Metrics", exact=True).click()
        chart = page.get_by_role("figure").filter(has_text="Agents by status")
        expect(chart).to_contain_text("running")
        messages = page.get_by_role("figure").filter(has_text="Messages per second")
        expect(messages.get_by_role("img")).to_be_visible()
        view.check("metrics")

        # An admin makes a viewer's token, shown once.
        page.get_by_role("link", name="Settings", exact=True).click()
        expect(page.get_by_role("rowheader", name="dashboard_dir")).to_be_visible()
        page.get_by_label("Token name").fill("dash-viewer")
        page.get_by_label("Role").select_option("viewer")
        page.get_by_role("button", name="Create token").click()
        made = page.get_by_role("region", name="New token")
        token = made.locator("code").inner_text()
        view.check("settings")
    finally:
        page.close()

    with platform.client(token) as api:
        assert api.get("/api/v1/whoami").json() == {"name": "dash-viewer", "role": "viewer"}
    with platform.client() as api:
        letters = api.get("/api/v1/dlq", params={"agent": "dash-flaky"}).json()["items"]
        assert letters == [], "the replayed dead letter is gone"
        # The replay was handled: the dead letter's message names its replay, which succeeded.
        record = api.get(f"/api/v1/messages/{dead_letter}").json()
        assert record["dead_letter"] == "replayed", record
        eventually(
            lambda: (
                api.get(f"/api/v1/messages/{record['replayed_as']}").json()["status"] == "acked"
            ),
            what="the replayed message handled",
        )
    assert len(view.seen) == 11
