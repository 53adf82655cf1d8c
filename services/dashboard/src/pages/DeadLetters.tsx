import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { api, idempotencyKey, unwrap, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { describeError, ErrorBox } from "../components/ErrorBox";
import { useAgentNames, useStreamEvents } from "../lib/liveEvents";
import { formatTime, preview } from "../lib/useLoad";
import { PageHead } from "../components/PageHead";

type DeadLetter = Schemas["DeadLetter"];

interface Outcome {
  done: string[];
  failed: [string, string][];
}

const INLINE_LIMIT = 1 << 20;

/** A listing carries no payloads (they stay in the queue's stream): each is read when asked. */
function PayloadPreview({ letter }: { letter: DeadLetter }) {
  const [shown, setShown] = useState<{ text: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  if (shown) return <code className="preview">{shown.text}</code>;
  return (
    <>
      <button
        type="button"
        className="link"
        aria-label={`Show the payload of ${letter.id}`}
        onClick={() => {
          setError(null);
          unwrap(api.GET("/api/v1/dlq/{msg_id}", { params: { path: { msg_id: letter.id } } }))
            .then((full) =>
              setShown({
                // A payload over the inline limit stays in the object store (claim check).
                text: full.payload == null && full.size > INLINE_LIMIT ? `(${full.size} bytes, by claim check)` : preview(full.payload),
              }),
            )
            .catch(setError);
        }}
      >
        Show ({letter.size} bytes)
      </button>
      {error !== null && <span className="field-error">{describeError(error)}</span>}
    </>
  );
}

export default function DeadLetters() {
  const [items, setItems] = useState<DeadLetter[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [agent, setAgent] = useState("");
  const [applied, setApplied] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirmPurge, setConfirmPurge] = useState<string[] | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const can = useCan();
  const canReplay = can("operator");
  const canPurge = can("admin");

  const load = useCallback(
    (after?: string) => {
      setLoading(true);
      unwrap(api.GET("/api/v1/dlq", { params: { query: { agent: applied || undefined, limit: 100, after } } }))
        .then((page) => {
          setItems((old) => (after ? [...old, ...page.items] : page.items));
          setNext(page.next ?? null);
          setTotal(page.total);
          setError(null);
        })
        .catch(setError)
        .finally(() => setLoading(false));
    },
    [applied],
  );
  useEffect(() => {
    setSelected(new Set());
    load();
  }, [load]);
  // The list is oldest first: a new dead letter joins its end, so read it again when all of it
  // is shown; otherwise only the count grows (it is on a page not loaded yet).
  const query = applied ? `?agent=${encodeURIComponent(applied)}` : "";
  const live = useStreamEvents(`/api/v1/dlq/events${query}`, "dead_letter", () => {
    if (next === null) load();
    else setTotal((t) => (t === null ? t : t + 1));
  });
  const names = useAgentNames(items.map((d) => d.agent_id));

  async function act(ids: string[], kind: "replay" | "purge") {
    const result: Outcome = { done: [], failed: [] };
    for (const id of ids) {
      try {
        const params = { path: { msg_id: id }, header: { "Idempotency-Key": idempotencyKey() } };
        if (kind === "replay") await unwrap(api.POST("/api/v1/dlq/{msg_id}/replay", { params }));
        else await unwrap(api.DELETE("/api/v1/dlq/{msg_id}", { params }));
        result.done.push(id);
      } catch (e) {
        result.failed.push([id, describeError(e)]);
      }
    }
    setOutcome(result);
    setSelected((old) => new Set([...old].filter((id) => !result.done.includes(id))));
    load();
    return kind;
  }

  const toggle = (id: string, on: boolean) =>
    setSelected((old) => {
      const n = new Set(old);
      if (on) n.add(id);
      else n.delete(id);
      return n;
    });
  const allSelected = items.length > 0 && items.every((d) => selected.has(d.id));

  return (
    <>
      <PageHead title="Dead letters" onRefresh={() => load()} busy={loading} />
      <form
        className="filters"
        aria-label="Dead letter filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(agent.trim());
        }}
      >
        <div className="field">
          <label htmlFor="dlq-agent">Agent</label>
          <input id="dlq-agent" value={agent} onChange={(e) => setAgent(e.target.value)} />
        </div>
        <button type="submit">Apply filters</button>
      </form>
      <ErrorBox error={error} />
      {outcome && (
        <div role="status" className={outcome.failed.length ? "error-box" : "notice"}>
          {outcome.done.length > 0 && <p>Done for {outcome.done.length} dead letter(s).</p>}
          {outcome.failed.map(([id, why]) => (
            <p key={id}>
              <code>{id}</code>: {why}
            </p>
          ))}
        </div>
      )}
      <p role="status">
        {total === null ? "Loading…" : `${total} dead letters; ${selected.size} selected`}
        {live === "open" ? " (live)" : live === "reconnecting" ? " (reconnecting…)" : ""}
      </p>
      <div className="actions">
        {canReplay && (
          <button type="button" disabled={selected.size === 0} onClick={() => void act([...selected], "replay")}>
            Replay selected
          </button>
        )}
        {canPurge && (
          <button type="button" className="danger" disabled={selected.size === 0} onClick={() => setConfirmPurge([...selected])}>
            Purge selected
          </button>
        )}
      </div>
      {items.length === 0 && total !== null ? (
        <p>No dead letters.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select all"
                    checked={allSelected}
                    onChange={(e) => setSelected(e.target.checked ? new Set(items.map((d) => d.id)) : new Set())}
                  />
                </th>
                <th scope="col">Message</th>
                <th scope="col">Agent</th>
                <th scope="col">Payload</th>
                <th scope="col">Last error</th>
                <th scope="col">Deliveries</th>
                <th scope="col">Dead since</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select ${d.id}`}
                      checked={selected.has(d.id)}
                      onChange={(e) => toggle(d.id, e.target.checked)}
                    />
                  </td>
                  <td>
                    <code>{d.id}</code>
                    <br />
                    <small>{d.reason}</small>
                  </td>
                  <td>
                    <Link to={`/agents/${encodeURIComponent(d.agent_id)}`} title={d.agent_id}>
                      {names.get(d.agent_id) ?? d.agent_id}
                    </Link>
                  </td>
                  <td>
                    <PayloadPreview letter={d} />
                  </td>
                  <td>{d.last_error ?? "—"}</td>
                  <td>{d.deliveries}</td>
                  <td>{formatTime(d.dead_at)}</td>
                  <td className="row-actions">
                    {canReplay && (
                      <button type="button" onClick={() => void act([d.id], "replay")}>
                        Replay
                      </button>
                    )}
                    {canPurge && (
                      <button type="button" className="danger" onClick={() => setConfirmPurge([d.id])}>
                        Purge
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next && (
        <button type="button" onClick={() => load(next)} disabled={loading}>
          Load more
        </button>
      )}
      {confirmPurge && (
        <ConfirmDialog
          title={`Purge ${confirmPurge.length} dead letter(s)?`}
          message="Purged dead letters are gone for good (admin role needed)."
          confirmLabel="Purge for good"
          onCancel={() => setConfirmPurge(null)}
          onConfirm={() => {
            const ids = confirmPurge;
            setConfirmPurge(null);
            void act(ids, "purge");
          }}
        />
      )}
    </>
  );
}
