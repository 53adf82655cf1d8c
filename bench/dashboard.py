"""The dashboard's agent grid with a big fleet, in headless chromium (Debian's, by Playwright).

    .venv/bin/python bench/dashboard.py --agents 10000

Runs `cortex up`, creates N agents through the API (created, not deployed: the grid's cost is
the same), opens the Agents view signed in, and prints one JSON document:

- `grid_interactive_ms`: from navigation to the first rows drawn and the main thread free for
  the next frame and event, the median of `--loads` loads;
- `status_change_ms`: from the API's answer to a change of an agent's status (deploy) to the
  grid showing the new status, without a reload (the change stream), p50 and max of
  `--changes` agents;
- `scroll`: frames while scrolling the grid by `--scroll-px` pixels a frame for `--frames`
  frames, and how many were dropped (a frame longer than 1.5 x 16.7 ms counts the 16.7 ms slots
  it missed); more agents are fetched as the scroll nears the end of the loaded ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from harness import TOKEN, Platform, pct

DASHBOARD = Path(__file__).resolve().parents[1] / "services" / "dashboard"
CANDIDATES = ("/usr/lib/chromium/chromium", shutil.which("chromium") or "")
CHROMIUM = next((path for path in CANDIDATES if path and os.path.exists(path)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
FRAME_MS = 1000 / 60

SCROLL = """async ([frames, step]) => {
  const box = document.querySelector('[aria-label="Agents table, scrollable"]');
  const deltas = [];
  let last = performance.now();
  for (let i = 0; i < frames; i++) {
    await new Promise(requestAnimationFrame);
    const now = performance.now();
    deltas.push(now - last);
    last = now;
    box.scrollTop += step;
  }
  return {deltas, scrolled: box.scrollTop};
}"""


async def create_agents(url: str, n: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as api:

        async def one(i: int) -> None:
            async with slots:
                body = {"name": f"agent-{i:05d}", "template": "echo", "labels": {"bench": "grid"}}
                reply = await api.post("/api/v1/agents", json=body)
                reply.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - began


def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    platform = Platform()
    try:
        created_s = asyncio.run(create_agents(platform.url, args.agents, args.concurrency))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.add_init_script(f"sessionStorage.setItem('cortex.token', {json.dumps(TOKEN)})")
            first_row = page.get_by_role("link", name="agent-00000", exact=True)

            loads = []
            for _ in range(args.loads):
                began = time.perf_counter()
                page.goto(platform.url + "/agents")
                first_row.wait_for(timeout=60_000)
                # Interactive: the main thread is free to paint a frame and take an event.
                page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
                loads.append((time.perf_counter() - began) * 1000)

            changes = []
            with httpx.Client(
                base_url=platform.url, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as api:
                for i in range(args.changes):
                    name = f"agent-{i:05d}"
                    row = page.get_by_role("row").filter(
                        has=page.get_by_role("link", name=name, exact=True)
                    )
                    row.wait_for()
                    reply = api.post(f"/api/v1/agents/{name}/deploy")
                    reply.raise_for_status()
                    answered = time.perf_counter()
                    page.wait_for_function(
                        "([n]) => [...document.querySelectorAll('tr')].some(r =>"
                        " r.textContent.includes(n) && !r.textContent.includes('created'))",
                        arg=[name],
                        polling="raf",
                        timeout=30_000,
                    )
                    changes.append(time.perf_counter() - answered)

            scrolled = page.evaluate(SCROLL, [args.frames, args.scroll_px])
            deltas = scrolled["deltas"][1:]
            dropped = sum(max(0, round(d / FRAME_MS) - 1) for d in deltas if d > 1.5 * FRAME_MS)
            shown = page.get_by_role("status").filter(has_text="Showing").first.text_content()
            browser.close()
        return {
            "agents": args.agents,
            "create_s": round(created_s, 1),
            "grid_interactive_ms": round(statistics.median(loads), 1),
            "grid_interactive_ms_each": [round(x, 1) for x in loads],
            "status_change_ms": {
                "p50": round(pct(changes, 0.5), 1),
                "max": round(max(changes) * 1000, 1),
                "n": len(changes),
            },
            "scroll": {
                "frames": len(deltas),
                "dropped": dropped,
                "frame_ms_p50": round(pct([d / 1000 for d in deltas], 0.5), 1),
                "frame_ms_p99": round(pct([d / 1000 for d in deltas], 0.99), 1),
                "scrolled_px": scrolled["scrolled"],
                "grid_says": shown,
            },
        }
    finally:
        platform.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--scroll-px", type=int, default=120)
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("chromium is not installed: make debian-packages (apt-get, as root)")
    if not (DASHBOARD / "dist" / "index.html").exists():
        raise SystemExit("the dashboard is not built: make dashboard")
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
