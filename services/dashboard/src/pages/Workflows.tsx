import { useState, type FormEvent } from "react";
import { stringify as stringifyYaml } from "yaml";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { api, idempotencyKey, unwrap, type ExecutionStatus } from "../api/client";
import { useCan } from "../auth";
import { useChanges } from "../changes";
import { ErrorBox } from "../components/ErrorBox";
import { StatusBadge } from "../components/Status";
import { parseTemplate } from "../lib/notation";
import { formatTime, useLoad } from "../lib/useLoad";
import { ColumnHeads } from "../components/PageHead";

const EXEC_STATUSES: ExecutionStatus[] = ["running", "succeeded", "failed", "cancelled"];

type Notation = "json" | "yaml";

/** A workflow template's latest version as JSON or YAML (the same document either way). */
function TemplateDocument({ name }: { name: string }) {
  const [notation, setNotation] = useState<Notation>("yaml");
  const t = useLoad(() => unwrap(api.GET("/api/v1/workflow-templates/{name}", { params: { path: { name } } })), [name]);
  const doc = t.data ? (t.data.versions.at(-1) ?? t.data) : null;
  return (
    <>
      <div role="group" aria-label={`Notation of ${name}`} className="filters">
        {(["yaml", "json"] as const).map((n) => (
          <button key={n} type="button" aria-pressed={notation === n} onClick={() => setNotation(n)}>
            {n.toUpperCase()}
          </button>
        ))}
      </div>
      <ErrorBox error={t.error} />
      {doc && (
        <pre className="json-block" aria-label={`${name} as ${notation.toUpperCase()}`}>
          {notation === "json" ? JSON.stringify(doc, null, 2) : stringifyYaml(doc)}
        </pre>
      )}
    </>
  );
}

function RegisterTemplate({ onDone }: { onDone: () => void }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [info, setInfo] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    setInfo(null);
    let body: unknown;
    try {
      body = parseTemplate(text);
    } catch (err) {
      setError(err);
      return;
    }
    try {
      const view = await unwrap(
        api.POST("/api/v1/workflow-templates", {
          // The gateway validates the definition and names each problem by its location.
          body: body as never,
          params: { header: { "Idempotency-Key": idempotencyKey() } },
        }),
      );
      setInfo(`Registered ${view.name} version ${view.version ?? "1"}.`);
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <form onSubmit={submit}>
      <div className="field">
        <label htmlFor="wft-json">Workflow template (YAML or JSON)</label>
        <textarea
          id="wft-json"
          rows={10}
          spellCheck={false}
          value={text}
          onChange={(e) => setText(e.target.value)}
          aria-invalid={error !== null}
          aria-describedby={error !== null ? "wft-errors" : undefined}
          placeholder={"name: fanout\nversion: \"1\"\nsteps:\n  - ..."}
        />
      </div>
      <ErrorBox id="wft-errors" error={error} />
      {info && <p role="status">{info}</p>}
      <button type="submit">Register</button>
    </form>
  );
}

function StartWorkflow({ templates }: { templates: string[] }) {
  const [template, setTemplate] = useState("");
  const [name, setName] = useState("");
  const [params, setParams] = useState("{}");
  const [error, setError] = useState<unknown>(null);
  const navigate = useNavigate();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    try {
      const parsed = JSON.parse(params) as Record<string, unknown>;
      const wf = await unwrap(
        api.POST("/api/v1/workflows", {
          body: { template, params: parsed, name: name || null },
          params: { header: { "Idempotency-Key": idempotencyKey() } },
        }),
      );
      const ex = await unwrap(
        api.POST("/api/v1/workflows/{workflow_id}/execute", {
          params: { path: { workflow_id: wf.id }, header: { "Idempotency-Key": idempotencyKey() } },
          body: {},
        }),
      );
      navigate(`/executions/${ex.id}`);
    } catch (err) {
      setError(err instanceof SyntaxError ? new Error(`Parameters: ${err.message}`) : err);
    }
  }
  return (
    <form onSubmit={submit}>
      <div className="field">
        <label htmlFor="wf-template">Workflow template</label>
        <select id="wf-template" value={template} onChange={(e) => setTemplate(e.target.value)} required>
          <option value="">Choose a template</option>
          {templates.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="wf-name">Workflow name (optional)</label>
        <input id="wf-name" value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="wf-params">Parameters (JSON)</label>
        <textarea id="wf-params" rows={4} spellCheck={false} value={params} onChange={(e) => setParams(e.target.value)} />
      </div>
      <ErrorBox error={error} />
      <button type="submit" disabled={!template}>
        Create and run
      </button>
    </form>
  );
}

export default function Workflows() {
  const [search, setSearch] = useSearchParams();
  const status = search.get("status") ?? "";
  const templateFilter = search.get("template") ?? "";
  const workflowFilter = search.get("workflow") ?? "";
  const [open, setOpen] = useState<string | null>(null);

  const templates = useLoad(() => unwrap(api.GET("/api/v1/workflow-templates")), []);
  const workflows = useLoad(
    () => unwrap(api.GET("/api/v1/workflows", { params: { query: { template: templateFilter || undefined, limit: 50 } } })),
    [templateFilter],
  );
  const executions = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/executions", {
          params: {
            query: {
              status: (status || undefined) as ExecutionStatus | undefined,
              workflow: workflowFilter || undefined,
              template: templateFilter || undefined,
              limit: 100,
            },
          },
        }),
      ),
    [status, workflowFilter, templateFilter],
  );
  useChanges({ kinds: ["wftemplate"] }, templates.reload, 500);
  useChanges({ kinds: ["workflow"] }, workflows.reload, 500);
  useChanges({ kinds: ["execution"] }, executions.reload, 500);

  const setFilter = (key: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(key, value);
    else next.delete(key);
    setSearch(next, { replace: true });
  };
  const shownExecutions = executions.data?.items ?? [];
  const runAgain = async (workflowId: string) => {
    const ex = await unwrap(
      api.POST("/api/v1/workflows/{workflow_id}/execute", {
        params: { path: { workflow_id: workflowId }, header: { "Idempotency-Key": idempotencyKey() } },
        body: {},
      }),
    );
    return ex.id;
  };
  const navigate = useNavigate();
  const [runError, setRunError] = useState<unknown>(null);
  const can = useCan();
  const operator = can("operator");

  return (
    <>
      <h1>Workflows</h1>

      <section className="card" aria-labelledby="wft-h">
        <h2 id="wft-h">Workflow templates</h2>
        <ErrorBox error={templates.error} />
        {templates.data && templates.data.length === 0 && <p>No workflow templates.</p>}
        <ul className="plain">
          {templates.data?.map((t) => (
            <li key={t.name}>
              <strong>{t.name}</strong> v{t.latest} <span className="muted">{t.description}</span>{" "}
              <button type="button" aria-expanded={open === t.name} onClick={() => setOpen(open === t.name ? null : t.name)}>
                {open === t.name ? `Hide ${t.name}` : `View ${t.name}`}
              </button>
              {open === t.name && <TemplateDocument name={t.name} />}
            </li>
          ))}
        </ul>
        {operator && (
          <details>
            <summary>Register a workflow template</summary>
            <RegisterTemplate onDone={templates.reload} />
          </details>
        )}
      </section>

      <section className="card" aria-labelledby="wf-h">
        <h2 id="wf-h">Workflows</h2>
        {operator && (
          <details>
            <summary>Start a workflow</summary>
            <StartWorkflow templates={templates.data?.map((t) => t.name) ?? []} />
          </details>
        )}
        <ErrorBox error={workflows.error ?? runError} />
        <table>
          <ColumnHeads names={["Workflow", "Template", "Executions", "Last execution", "Created", "Actions"]} />
          <tbody>
            {workflows.data?.items.map((w) => (
              <tr key={w.id}>
                <td>
                  {w.name ?? <code>{w.id}</code>}{" "}
                  <button type="button" className="link" onClick={() => setFilter("workflow", w.id)}>
                    Show executions
                  </button>
                </td>
                <td>
                  {w.template} v{w.template_version}
                </td>
                <td>{w.executions ?? 0}</td>
                <td>{w.last_execution ? <Link to={`/executions/${w.last_execution}`}>{w.last_execution}</Link> : "—"}</td>
                <td>{formatTime(w.created_at)}</td>
                <td>
                  {operator && (
                  <button
                    type="button"
                    onClick={() => {
                      setRunError(null);
                      runAgain(w.id)
                        .then((id) => navigate(`/executions/${id}`))
                        .catch(setRunError);
                    }}
                  >
                    Run
                  </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section className="card" aria-labelledby="ex-h">
        <h2 id="ex-h">Executions</h2>
        <div className="filters" role="group" aria-label="Execution filters">
          <div className="field">
            <label htmlFor="ex-status">Execution status</label>
            <select id="ex-status" value={status} onChange={(e) => setFilter("status", e.target.value)}>
              <option value="">Any</option>
              {EXEC_STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="ex-template">Execution template</label>
            <select id="ex-template" value={templateFilter} onChange={(e) => setFilter("template", e.target.value)}>
              <option value="">Any</option>
              {templates.data?.map((t) => (
                <option key={t.name}>{t.name}</option>
              ))}
            </select>
          </div>
          {workflowFilter && (
            <p>
              Workflow <code>{workflowFilter}</code>{" "}
              <button type="button" onClick={() => setFilter("workflow", "")}>
                Clear workflow filter
              </button>
            </p>
          )}
        </div>
        <ErrorBox error={executions.error} />
        {shownExecutions.length === 0 && !executions.loading && <p>No executions.</p>}
        <table>
          <ColumnHeads names={["Execution", "Template", "Status", "Started", "Finished", "Error"]} />
          <tbody>
            {shownExecutions.map((x) => (
              <tr key={x.id}>
                <td>
                  <Link to={`/executions/${x.id}`}>{x.id}</Link>
                </td>
                <td>
                  {x.template} v{x.template_version}
                </td>
                <td>
                  <StatusBadge status={x.status} />
                </td>
                <td>{formatTime(x.started_at)}</td>
                <td>{formatTime(x.finished_at)}</td>
                <td>{x.error ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
