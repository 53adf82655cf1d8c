import { useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, authHeaders, idempotencyKey, notifyUnauthorized, unwrap, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { ErrorBox } from "../components/ErrorBox";
import { StatusBadge } from "../components/Status";
import { stepDuration, Timeline } from "../components/Timeline";
import { followSSE, type StreamState } from "../lib/sse";
import { formatTime } from "../lib/useLoad";
import { ColumnHeads } from "../components/PageHead";

type Execution = Schemas["ExecutionView"];

export default function ExecutionDetail() {
  const { id = "" } = useParams();
  const [execution, setExecution] = useState<Execution | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [stream, setStream] = useState<StreamState>("closed");
  const navigate = useNavigate();
  const operator = useCan()("operator");

  useEffect(() => {
    let live = true;
    setExecution(null);
    unwrap(api.GET("/api/v1/executions/{execution_id}", { params: { path: { execution_id: id } } }))
      .then((x) => live && setExecution(x))
      .catch((e: unknown) => live && setError(e));
    return () => {
      live = false;
    };
  }, [id]);

  const running = execution?.status === "running";
  useEffect(() => {
    if (!running) return undefined;
    // The execution's own stream: an `execution` event with the full view, then step events,
    // each followed by a refreshed `execution` view, until it has finished.
    const controller = new AbortController();
    void followSSE({
      url: `/api/v1/executions/${encodeURIComponent(id)}/events`,
      headers: () => authHeaders(),
      signal: controller.signal,
      reconnectOnEnd: false,
      onUnauthorized: notifyUnauthorized,
      onState: setStream,
      onMessage: (m) => {
        if (m.event !== "execution") return;
        try {
          const view = JSON.parse(m.data) as Execution;
          setExecution(view);
          if (view.status !== "running") controller.abort();
        } catch {
          /* ignore a malformed event */
        }
      },
    });
    return () => controller.abort();
  }, [id, running]);

  async function cancel() {
    setActionError(null);
    try {
      setExecution(
        await unwrap(
          api.POST("/api/v1/executions/{execution_id}/cancel", {
            params: { path: { execution_id: id }, header: { "Idempotency-Key": idempotencyKey() } },
          }),
        ),
      );
    } catch (e) {
      setActionError(e);
    }
  }

  async function runAgain(x: Execution) {
    setActionError(null);
    try {
      const next = await unwrap(
        api.POST("/api/v1/workflows/{workflow_id}/execute", {
          params: { path: { workflow_id: x.workflow_id }, header: { "Idempotency-Key": idempotencyKey() } },
          body: { params: x.params },
        }),
      );
      navigate(`/executions/${next.id}`);
    } catch (e) {
      setActionError(e);
    }
  }

  return (
    <>
      <p>
        <Link to="/workflows">← Workflows</Link>
      </p>
      <h1>Execution {execution ? `of ${execution.template}` : id}</h1>
      <ErrorBox error={error} />
      {execution && (
        <>
          <section className="card" aria-labelledby="ex-sum-h">
            <h2 id="ex-sum-h">Summary</h2>
            <dl className="facts">
              <dt>Status</dt>
              <dd>
                <StatusBadge status={execution.status} />
                {running && <span className="muted"> (live: {stream})</span>}
              </dd>
              <dt>Id</dt>
              <dd>
                <code>{execution.id}</code>
              </dd>
              <dt>Template</dt>
              <dd>
                {execution.template} v{execution.template_version}
              </dd>
              <dt>Started</dt>
              <dd>{formatTime(execution.started_at)}</dd>
              <dt>Finished</dt>
              <dd>{formatTime(execution.finished_at)}</dd>
              <dt>Parameters</dt>
              <dd>
                <code>{JSON.stringify(execution.params)}</code>
              </dd>
              {execution.error && (
                <>
                  <dt>Error</dt>
                  <dd className="error-text">{execution.error}</dd>
                </>
              )}
            </dl>
            <div className="actions">
              {running && operator && (
                <button type="button" className="danger" onClick={() => void cancel()}>
                  Cancel
                </button>
              )}
              {operator && (
                <button type="button" onClick={() => void runAgain(execution)}>
                  Run again
                </button>
              )}
            </div>
            <ErrorBox error={actionError} />
          </section>
          <section className="card" aria-labelledby="tl-h">
            <h2 id="tl-h">Timeline</h2>
            <Timeline execution={execution} />
          </section>
          <section className="card" aria-labelledby="steps-h">
            <h2 id="steps-h">Steps</h2>
            <table>
              <ColumnHeads names={["Step", "Type", "Group", "Status", "Attempts", "Duration", "Output or error"]} />
              <tbody>
                {execution.steps.map((s) => (
                  <tr key={s.id}>
                    <td>{s.id}</td>
                    <td>{s.type}</td>
                    <td>{s.parent ?? "—"}</td>
                    <td>
                      <StatusBadge status={s.status} />
                    </td>
                    <td>{s.attempts ?? 0}</td>
                    <td>{stepDuration(s)}</td>
                    <td>
                      {s.error && <p className="error-text">{s.error}</p>}
                      {s.output !== undefined && s.output !== null && (
                        <details>
                          <summary>Output of {s.id}</summary>
                          <pre>{JSON.stringify(s.output, null, 2)}</pre>
                        </details>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        </>
      )}
    </>
  );
}
