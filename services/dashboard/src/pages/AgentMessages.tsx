import { useEffect, useState } from "react";
import { ApiError, api, unwrap } from "../api/client";
import { ErrorBox } from "../components/ErrorBox";
import { ColumnHeads } from "../components/PageHead";
import { StatusBadge } from "../components/Status";
import { useAgentNames, useStreamEvents } from "../lib/liveEvents";
import { formatTime, useLoad } from "../lib/useLoad";

type Direction = "in" | "out" | "both";

const UNSETTLED_REREAD_MS = 2000;
const AGENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The agent's recent messages, newest first: what it received, what it sent, or both. Read
 * again when the hosts report on a message to the agent (its stream of message statuses),
 * after a send, when asked, and, for what it sent (reported on the receivers' streams), while
 * a message it shows is still on its way. */
export function AgentMessages({ agentId, tick }: { agentId: string; tick: number }) {
  const [direction, setDirection] = useState<Direction>("both");
  const [again, setAgain] = useState(0);
  const page = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/agents/{ref}/messages", {
          params: { path: { ref: agentId }, query: { direction, limit: 50 } },
        }),
      ),
    [agentId, direction, tick, again],
  );
  useStreamEvents(`/api/v1/agents/${encodeURIComponent(agentId)}/messages/events`, "message_status", () =>
    setAgain((n) => n + 1),
  );
  const items = page.data?.items ?? [];
  // Agents are named; a sender outside the platform (`api:admin`, `my-script`) is not an id.
  const names = useAgentNames(items.flatMap((m) => [m.from, m.to ?? ""]).filter((id) => AGENT_ID.test(id)));
  const named = (id: string) => names.get(id) ?? id;
  // A message on its way (accepted, delivered) settles within moments, and a failed read (the
  // gateway restarting) is likely to work a moment later: look again until neither is so.
  const unsettled = items.some((m) => m.status === "accepted" || m.status === "delivered");
  // (A refusal, such as a 404 for an agent just purged, is not tried again.)
  const failed = Boolean(page.error) && !(page.error instanceof ApiError && page.error.status < 500);
  useEffect(() => {
    if (!unsettled && !failed) return;
    const timer = setTimeout(() => setAgain((n) => n + 1), UNSETTLED_REREAD_MS);
    return () => clearTimeout(timer);
  }, [unsettled, failed, page.data, page.error]);
  return (
    <section className="card" aria-labelledby="msgs-h">
      <h2 id="msgs-h">Messages</h2>
      <div className="filters" role="group" aria-label="Message filters">
        <div className="field">
          <label htmlFor="msgs-direction">Direction</label>
          <select id="msgs-direction" value={direction} onChange={(e) => setDirection(e.target.value as Direction)}>
            <option value="both">In and out</option>
            <option value="in">Received</option>
            <option value="out">Sent</option>
          </select>
        </div>
        <button type="button" onClick={() => setAgain((n) => n + 1)}>
          Refresh messages
        </button>
      </div>
      <ErrorBox error={page.error} />
      {items.length === 0 && !page.loading && <p>No messages.</p>}
      {items.length > 0 && (
        <table aria-label="Messages of this agent">
          <ColumnHeads names={["Message", "Direction", "Kind", "From", "To", "Status", "Deliveries", "Last error", "Sent"]} />
          <tbody>
            {items.map((m) => (
              <tr key={m.id}>
                <td>
                  <code>{m.id}</code>
                </td>
                <td>{m.to === agentId ? "in" : "out"}</td>
                <td>{m.kind}</td>
                <td>{named(m.from)}</td>
                <td>{m.topic ? `topic ${m.topic}` : m.to ? named(m.to) : "—"}</td>
                <td>
                  <StatusBadge status={m.status} />
                </td>
                <td>{m.deliveries ?? 0}</td>
                <td>{m.last_error ?? "—"}</td>
                <td>{formatTime(m.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
