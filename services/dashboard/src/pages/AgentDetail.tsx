import { useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { ApiError, api, idempotencyKey, unwrap, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { useChanges } from "../changes";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorBox } from "../components/ErrorBox";
import { diffJson, JsonTree } from "../components/JsonTree";
import { LogPanel } from "../components/LogPanel";
import { StatusBadge } from "../components/Status";
import { announcedVersions, readUntil } from "../lib/fresh";
import { formatTime, useLoad } from "../lib/useLoad";
import { ColumnHeads } from "../components/PageHead";
import { AgentMessages } from "./AgentMessages";

type Agent = Schemas["AgentView"];

function Actions({ agent, onDone }: { agent: Agent; onDone: () => void }) {
  const [replicas, setReplicas] = useState(String(agent.replicas));
  const [confirm, setConfirm] = useState<"terminate" | "purge" | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [info, setInfo] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const navigate = useNavigate();
  const ref = agent.id;
  const header = () => ({ "Idempotency-Key": idempotencyKey() });

  async function run(what: string, action: () => Promise<unknown>, after?: () => void) {
    setBusy(true);
    setError(null);
    setInfo(null);
    try {
      await action();
      setInfo(`${what}: accepted.`);
      onDone();
      after?.();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="actions-h">
      <h2 id="actions-h">Actions</h2>
      <div className="actions">
        <button
          type="button"
          disabled={busy}
          onClick={() =>
            run("Deploy", () =>
              unwrap(api.POST("/api/v1/agents/{ref}/deploy", { params: { path: { ref }, header: header() }, body: {} })),
            )
          }
        >
          Deploy
        </button>
        <form
          className="inline-form"
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            void run(`Scale to ${replicas}`, () =>
              unwrap(
                api.POST("/api/v1/agents/{ref}/scale", {
                  params: { path: { ref }, header: header() },
                  body: { replicas: Number(replicas) },
                }),
              ),
            );
          }}
        >
          <label htmlFor="scale-replicas">Replicas</label>
          <input
            id="scale-replicas"
            type="number"
            min={0}
            max={10000}
            value={replicas}
            onChange={(e) => setReplicas(e.target.value)}
            required
          />
          <button type="submit" disabled={busy}>
            Scale
          </button>
        </form>
        <button type="button" className="danger" disabled={busy} onClick={() => setConfirm("terminate")}>
          Terminate
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => setConfirm("purge")}>
          Purge
        </button>
      </div>
      {info && <p role="status">{info}</p>}
      <ErrorBox error={error} />
      {confirm && (
        <ConfirmDialog
          title={confirm === "purge" ? `Purge agent ${agent.name}?` : `Terminate agent ${agent.name}?`}
          message={
            confirm === "purge"
              ? `This stops every replica of ${agent.name} and deletes it with its state for good.`
              : `This stops every replica of ${agent.name}.`
          }
          typeToConfirm={agent.name}
          confirmLabel={confirm === "purge" ? "Purge agent" : "Terminate agent"}
          onCancel={() => setConfirm(null)}
          onConfirm={() => {
            const purge = confirm === "purge";
            setConfirm(null);
            void run(
              purge ? "Purge" : "Terminate",
              () =>
                unwrap(
                  api.DELETE("/api/v1/agents/{ref}", {
                    params: { path: { ref }, query: { purge }, header: header() },
                  }),
                ),
              purge ? () => navigate("/agents") : undefined,
            );
          }}
        />
      )}
    </section>
  );
}

function Instances({ agent }: { agent: Agent }) {
  const instances = agent.instances ?? [];
  return (
    <section className="card" aria-labelledby="inst-h">
      <h2 id="inst-h">Instances</h2>
      {instances.length === 0 ? (
        <p>No instances.</p>
      ) : (
        <table>
          <ColumnHeads names={["Instance", "State", "Health", "Host", "In flight", "Handled / failures", "Last error"]} />
          <tbody>
            {instances.map((i) => (
              <tr key={i.id}>
                <td>
                  <code>{i.id}</code>
                </td>
                <td>
                  <StatusBadge status={i.state} />
                </td>
                <td>
                  <StatusBadge status={i.health} />
                </td>
                <td>
                  <code>{i.host_id}</code>
                </td>
                <td>{i.inflight ?? 0}</td>
                <td>
                  {i.handled ?? 0} / {i.failures ?? 0}
                </td>
                <td>{i.last_error ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function StatePanel({ agentRef, tick }: { agentRef: string; tick: number }) {
  const state = useLoad(() => unwrap(api.GET("/api/v1/agents/{ref}/state", { params: { path: { ref: agentRef } } })), [agentRef, tick]);
  const history = useLoad(
    () => unwrap(api.GET("/api/v1/agents/{ref}/state/history", { params: { path: { ref: agentRef } } })),
    [agentRef, tick],
  );
  const versions = history.data?.versions ?? [];
  const [from, setFrom] = useState<string>("");
  const [to, setTo] = useState<string>("");
  const fromV = versions.find((v) => String(v.version) === from) ?? versions.at(-2);
  const toV = versions.find((v) => String(v.version) === to) ?? versions.at(-1);
  const diff = fromV && toV ? diffJson(fromV.value, toV.value) : [];

  return (
    <section className="card" aria-labelledby="state-h">
      <h2 id="state-h">State</h2>
      <ErrorBox error={state.error} />
      {state.data && (
        <>
          <p className="muted">
            Version {state.data.version}, written {formatTime(state.data.updated_at)}
            {state.data.writer ? ` by ${state.data.writer}` : ""}
          </p>
          <div className="json-tree">
            <JsonTree value={state.data.value ?? null} />
          </div>
        </>
      )}
      <h3>History</h3>
      <ErrorBox error={history.error} />
      {versions.length < 2 ? (
        <p>{versions.length === 0 ? "No versions." : "Only one version: nothing to compare."}</p>
      ) : (
        <>
          <div className="inline-form">
            <label htmlFor="diff-from">From version</label>
            <select id="diff-from" value={fromV ? String(fromV.version) : ""} onChange={(e) => setFrom(e.target.value)}>
              {versions.map((v) => (
                <option key={v.version} value={String(v.version)}>
                  {v.version}
                </option>
              ))}
            </select>
            <label htmlFor="diff-to">To version</label>
            <select id="diff-to" value={toV ? String(toV.version) : ""} onChange={(e) => setTo(e.target.value)}>
              {versions.map((v) => (
                <option key={v.version} value={String(v.version)}>
                  {v.version}
                </option>
              ))}
            </select>
          </div>
          {diff.length === 0 ? (
            <p>No differences.</p>
          ) : (
            <ul className="diff" aria-label="Differences">
              {diff.map((d) => (
                <li key={d.path} className={`diff-${d.kind}`}>
                  <strong>{d.kind === "added" ? "+ added" : d.kind === "removed" ? "− removed" : "~ changed"}</strong> <code>{d.path}</code>
                  {d.before !== undefined && (
                    <>
                      {" "}
                      from <code>{d.before}</code>
                    </>
                  )}
                  {d.after !== undefined && (
                    <>
                      {" "}
                      to <code>{d.after}</code>
                    </>
                  )}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

function SendMessage({ agentRef, onSent }: { agentRef: string; onSent: () => void }) {
  const [payload, setPayload] = useState("{}");
  const [wait, setWait] = useState("10");
  const [result, setResult] = useState<Schemas["SendResult"] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setResult(null);
    let body: unknown;
    try {
      body = JSON.parse(payload);
    } catch {
      setError(new Error("The payload is not valid JSON."));
      return;
    }
    setBusy(true);
    try {
      const waitSeconds = wait === "" ? undefined : Number(wait);
      setResult(
        await unwrap(
          api.POST("/api/v1/agents/{ref}/messages", {
            params: { path: { ref: agentRef }, query: { wait: waitSeconds } },
            body: { payload: body, content_type: "application/json" },
          }),
        ),
      );
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      onSent();
    }
  }

  const notRunning = error instanceof ApiError && error.status === 409 && error.problem?.details?.message_id;
  return (
    <section className="card" aria-labelledby="send-h">
      <h2 id="send-h">Send message</h2>
      <form onSubmit={submit}>
        <div className="field">
          <label htmlFor="msg-payload">Message payload</label>
          <textarea id="msg-payload" rows={5} value={payload} onChange={(e) => setPayload(e.target.value)} spellCheck={false} />
        </div>
        <div className="field">
          <label htmlFor="msg-wait">Wait for reply (seconds)</label>
          <input id="msg-wait" type="number" min={0} max={300} value={wait} onChange={(e) => setWait(e.target.value)} />
        </div>
        <button type="submit" disabled={busy}>
          {busy ? "Sending…" : "Send"}
        </button>
      </form>
      <section role="region" aria-label="Reply" className="reply" aria-live="polite">
        {busy && <p>Waiting for the reply…</p>}
        {notRunning ? (
          <p role="alert">
            The agent is not running: the message was stored as {String(error.problem?.details?.message_id)} and will be handled once
            it runs ({String(error.problem?.details?.agent_status ?? "")}).
          </p>
        ) : (
          <ErrorBox error={error} />
        )}
        {result && (
          <>
            <p>
              Message <code>{result.id}</code>: <StatusBadge status={result.status} />
              {result.error ? ` — ${result.error}` : ""}
            </p>
            {result.reply ? (
              <pre>{JSON.stringify(result.reply.payload, null, 2)}</pre>
            ) : (
              <p>{result.status === "accepted" ? "Accepted; no reply waited for." : "No reply."}</p>
            )}
          </>
        )}
      </section>
    </section>
  );
}

function Subscriptions({ agentRef, tick, canChange }: { agentRef: string; tick: number; canChange: boolean }) {
  const subs = useLoad(() => unwrap(api.GET("/api/v1/agents/{ref}/subscriptions", { params: { path: { ref: agentRef } } })), [agentRef, tick]);
  const [topic, setTopic] = useState("");
  const [error, setError] = useState<unknown>(null);

  async function change(action: () => Promise<unknown>) {
    setError(null);
    try {
      await action();
      subs.reload();
    } catch (e) {
      setError(e);
    }
  }
  return (
    <section className="card" aria-labelledby="subs-h">
      <h2 id="subs-h">Subscriptions</h2>
      <ErrorBox error={subs.error ?? error} />
      {subs.data && subs.data.length === 0 && <p>No subscriptions.</p>}
      <ul className="plain">
        {subs.data?.map((s) => (
          <li key={s.topic}>
            <code>{s.topic}</code> <span className="muted">({s.source})</span>{" "}
            {canChange && (
            <button
              type="button"
              aria-label={`Unsubscribe from ${s.topic}`}
              onClick={() =>
                change(() =>
                  unwrap(
                    api.DELETE("/api/v1/agents/{ref}/subscriptions/{topic}", {
                      params: { path: { ref: agentRef, topic: s.topic }, header: { "Idempotency-Key": idempotencyKey() } },
                    }),
                  ),
                )
              }
            >
              Unsubscribe
            </button>
            )}
          </li>
        ))}
      </ul>
      {canChange && (
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void change(() =>
            unwrap(
              api.POST("/api/v1/agents/{ref}/subscriptions", {
                params: { path: { ref: agentRef }, header: { "Idempotency-Key": idempotencyKey() } },
                body: { topic },
              }),
            ),
          ).then(() => setTopic(""));
        }}
      >
        <label htmlFor="sub-topic">Topic</label>
        <input id="sub-topic" value={topic} onChange={(e) => setTopic(e.target.value)} required />
        <button type="submit">Subscribe</button>
      </form>
      )}
    </section>
  );
}

export default function AgentDetail() {
  const { ref = "" } = useParams();
  // The newest version of the agent a change has announced: a read after a change waits
  // until the replica answering it has applied that change.
  const announced = useRef(0);
  const agent = useLoad(
    () => readUntil(() => unwrap(api.GET("/api/v1/agents/{ref}", { params: { path: { ref } } })), announced.current),
    [ref],
  );
  const [tick, setTick] = useState(0);
  const [follow, setFollow] = useState(true);
  const [sent, setSent] = useState(0);
  const a = agent.data;
  const can = useCan();

  useChanges({ kinds: ["agent", "state", "subscription"], id: a?.id }, (changes) => {
    const version = announcedVersions(changes, "agent").get(a?.id ?? "");
    if (version !== undefined) announced.current = Math.max(announced.current, version);
    agent.reload();
    setTick((t) => t + 1);
  });

  return (
    <>
      <p>
        <Link to="/agents">← Agents</Link>
      </p>
      <h1>{a ? a.name : ref}</h1>
      <ErrorBox error={agent.error} />
      {!a && agent.loading && <p aria-busy="true">Loading…</p>}
      {a && (
        <>
          <section className="card" aria-labelledby="summary-h">
            <h2 id="summary-h">Summary</h2>
            <dl className="facts">
              <dt>Status</dt>
              <dd>
                <StatusBadge status={a.status} />
                {a.status_reason ? ` — ${a.status_reason}` : ""}
              </dd>
              <dt>Replicas (ready / desired)</dt>
              <dd>
                {a.ready_replicas ?? 0} / {a.replicas}
              </dd>
              <dt>Template</dt>
              <dd>
                {a.template} v{a.template_version}
              </dd>
              <dt>Pool</dt>
              <dd>{a.pool ?? "—"}</dd>
              <dt>Labels</dt>
              <dd>
                {Object.entries(a.labels ?? {})
                  .map(([k, v]) => `${k}=${v}`)
                  .join(", ") || "—"}
              </dd>
              <dt>Id</dt>
              <dd>
                <code>{a.id}</code>
              </dd>
              <dt>Updated</dt>
              <dd>{formatTime(a.updated_at)}</dd>
            </dl>
            <h3>Config</h3>
            <div className="json-tree">
              <JsonTree value={a.config} />
            </div>
          </section>
          {can("operator") && <Actions agent={a} onDone={agent.reload} />}
          <Instances agent={a} />
          <StatePanel agentRef={a.id} tick={tick} />
          {can("operator") && <SendMessage agentRef={a.id} onSent={() => setSent((n) => n + 1)} />}
          <AgentMessages agentId={a.id} tick={sent} />
          <Subscriptions agentRef={a.id} tick={tick} canChange={can("operator")} />
          <section className="card" aria-labelledby="logs-h">
            <h2 id="logs-h">Logs</h2>
            <div className="field field-check">
              <input id="agent-follow" type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
              <label htmlFor="agent-follow">Follow</label>
            </div>
            <LogPanel query={{ agent: a.id }} follow={follow} label={`Log lines of ${a.name}, newest first`} />
          </section>
        </>
      )}
    </>
  );
}
