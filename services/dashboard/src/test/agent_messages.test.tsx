import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AgentMessages } from "../pages/AgentMessages";
import { json, mockFetch, openStream } from "./fetchMock";

afterEach(() => vi.unstubAllGlobals());

const received = {
  id: "m-in-1",
  kind: "direct",
  from: "my-script",
  to: "a1",
  content_type: "application/json",
  size: 9,
  status: "dead_lettered",
  deliveries: 5,
  last_error: "boom",
  created_at: "2026-11-30T10:00:00Z",
};
const sent = {
  id: "m-out-1",
  kind: "topic",
  from: "a1",
  topic: "news",
  content_type: "application/json",
  size: 7,
  status: "acked",
  deliveries: 1,
  created_at: "2026-11-30T10:01:00Z",
};

describe("agent messages", () => {
  it("lists what the agent received and sent with their status, filtered on the server", async () => {
    const seen = mockFetch((req) => {
      if (req.url.pathname.endsWith("/messages/events")) return openStream();
      const direction = req.url.searchParams.get("direction");
      const items = direction === "in" ? [received] : direction === "out" ? [sent] : [sent, received];
      return json({ items, next: null });
    });
    const user = userEvent.setup();
    render(<AgentMessages agentId="a1" tick={0} />);
    const table = await screen.findByRole("table", { name: "Messages of this agent" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => within(r).getAllByRole("cell")[0]?.textContent)).toEqual(["m-out-1", "m-in-1"]);
    expect(rows[0]).toHaveTextContent("out");
    expect(rows[0]).toHaveTextContent("topic news");
    expect(rows[1]).toHaveTextContent("dead_lettered");
    expect(rows[1]).toHaveTextContent("boom");

    await user.selectOptions(screen.getByLabelText("Direction"), "in");
    await waitFor(() => expect(within(screen.getByRole("table")).queryByText("m-out-1")).toBeNull());
    const lists = () => seen.filter((r) => r.url.pathname === "/api/v1/agents/a1/messages");
    expect(lists().at(-1)?.url.searchParams.get("direction")).toBe("in");

    const before = lists().length;
    await user.click(screen.getByRole("button", { name: "Refresh messages" }));
    await waitFor(() => expect(lists().length).toBe(before + 1));
  });

  it("reads a message on its way again until it has settled", async () => {
    let reads = 0;
    mockFetch((req) => {
      if (req.url.pathname.endsWith("/messages/events")) return openStream();
      reads += 1;
      return json({ items: [{ ...received, status: reads < 2 ? "delivered" : "acked", last_error: null }], next: null });
    });
    render(<AgentMessages agentId="a1" tick={0} />);
    const table = await screen.findByRole("table", { name: "Messages of this agent" });
    expect(table).toHaveTextContent("delivered");
    await waitFor(() => expect(table).toHaveTextContent("acked"), { timeout: 5000 });
    const settled = reads;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(reads).toBe(settled); // settled: no more reads
  });

  it("reads the list again when a host reports on a message to the agent", async () => {
    let reads = 0;
    const report = { msg_id: "m-new", agent_id: "a1", status: "acked", delivery: 1, host_id: "h", at: "2026-11-30T10:02:00Z" };
    mockFetch((req) => {
      if (req.url.pathname === "/api/v1/agents/a1/messages/events")
        return openStream(`: following\n\nevent: message_status\nid: 3\ndata: ${JSON.stringify(report)}\n\n`);
      reads += 1;
      const items = reads > 1 ? [{ ...received, id: "m-new", status: "acked", last_error: null }, received] : [received];
      return json({ items, next: null });
    });
    render(<AgentMessages agentId="a1" tick={0} />);
    const table = await screen.findByRole("table", { name: "Messages of this agent" });
    expect(await within(table).findByText("m-new")).toBeInTheDocument();
  });

  it("tries a failed read again (the gateway restarting) and clears the error once it works", async () => {
    let reads = 0;
    mockFetch((req) => {
      if (req.url.pathname.endsWith("/messages/events")) return openStream();
      reads += 1;
      if (reads === 1) throw new TypeError("Failed to fetch");
      return json({ items: [received], next: null });
    });
    render(<AgentMessages agentId="a1" tick={0} />);
    expect(await screen.findByText(/Failed to fetch/)).toBeInTheDocument();
    await screen.findByRole("table", { name: "Messages of this agent" }, { timeout: 5000 });
    expect(screen.queryByText(/Failed to fetch/)).toBeNull();
  });
});
