import { useEffect, useState } from "react";
import { api, unwrap } from "../api/client";
import { ErrorBox } from "../components/ErrorBox";
import { ColumnHeads } from "../components/PageHead";
import { StatusBadge } from "../components/Status";
import { useStreamEvents } from "../lib/liveEvents";
import { formatTime, useLoad } from "../lib/useLoad";

type Direction = "in" | "out" | "both";

const UNSETTLED_REREAD_MS = 2000;

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
  // A message on its way (accepted, delivered) settles within moments; look again until it has.
  const unsettled = items.some((m) => m.status === "accepted" || m.status === "delivered");
  useEffect(() => {
    if (!unsettled) return;
    const timer = setTimeout(() => setAgain((n) => n + 1), UNSETTLED_REREAD_MS);
    return () => clearTimeout(timer);
  }, [unsettled, page.data]);
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
                <td>{m.from}</td>
                <td>{m.topic ? `topic ${m.topic}` : (m.to ?? "—")}</td>
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
