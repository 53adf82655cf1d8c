import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TOKEN_KEY } from "../api/client";
import { App } from "../App";
import { json, mockFetch, openStream } from "./fetchMock";

afterEach(() => vi.unstubAllGlobals());

function letter(id: string, agentId: string) {
  return {
    id,
    agent_id: agentId,
    from: "my-script",
    content_type: "application/json",
    size: 4,
    deliveries: 2,
    reason: "handler failed",
    last_error: "RuntimeError: upstream",
    created_at: "2026-11-30T10:00:00Z",
    dead_at: "2026-11-30T10:00:05Z",
    payload: null,
  };
}

describe("dead letters", () => {
  it("names each letter's agent and shows a new dead letter as it arrives", async () => {
    sessionStorage.setItem(TOKEN_KEY, "admin-token");
    let reads = 0;
    const seen = mockFetch((req) => {
      const path = req.url.pathname;
      if (path === "/api/v1/whoami") return json({ name: "root", role: "admin" });
      if (path === "/api/v1/events") return openStream();
      if (path === "/api/v1/dlq/events") {
        const event = { seq: 7, agent_id: "a-1", reason: "handler failed", at: "2026-11-30T10:01:00Z" };
        return openStream(`: following\n\nevent: dead_letter\nid: 7\ndata: ${JSON.stringify(event)}\n\n`);
      }
      if (path === "/api/v1/dlq") {
        // Read again only when the stream tells of a new one: nothing polls.
        reads += 1;
        const items = reads > 1 ? [letter("m-1", "a-1"), letter("m-2", "a-1")] : [letter("m-1", "a-1")];
        return json({ items, total: items.length, next: null });
      }
      if (path === "/api/v1/agents/a-1") return json({ id: "a-1", name: "flaky-bot" });
      if (path === "/api/v1/dlq/m-1") return json({ ...letter("m-1", "a-1"), payload: { order: 42 } });
      return json({ detail: "not mocked" }, 404);
    });
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/dlq"]}>
        <App />
      </MemoryRouter>,
    );
    const table = await screen.findByRole("table");
    expect(await within(table).findByText("m-2")).toBeInTheDocument();
    const links = await within(table).findAllByRole("link", { name: "flaky-bot" });
    expect(links).toHaveLength(2);
    expect(links[0]).toHaveAttribute("href", "/agents/a-1");
    expect(screen.getByText(/2 dead letters; 0 selected/)).toBeInTheDocument();
    // One name lookup for the agent, however many of its letters are shown.
    expect(seen.filter((r) => r.url.pathname === "/api/v1/agents/a-1")).toHaveLength(1);

    // A payload is read when asked for (a listing carries none).
    await userEvent.setup().click(screen.getByRole("button", { name: "Show the payload of m-1" }));
    expect(await within(table).findByText('{"order":42}')).toBeInTheDocument();
  });
});
