import { useVirtualizer } from "@tanstack/react-virtual";
import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { ApiError, api, idempotencyKey, unwrap, type AgentStatus, type Schemas } from "../api/client";
import { useCan } from "../auth";
import { useChanges } from "../changes";
import { ErrorBox } from "../components/ErrorBox";
import { fieldErrorsOf, FormError } from "../components/FieldErrors";
import { asSchema, defaultsFor, fieldId, SchemaField, schemaPaths } from "../components/SchemaForm";
import { StatusBadge } from "../components/Status";
import { announcedVersions, readUntil } from "../lib/fresh";
import { useLoad } from "../lib/useLoad";
import { ColumnHeads } from "../components/PageHead";

type Agent = Schemas["AgentView"];
const STATUSES: AgentStatus[] = ["created", "deploying", "running", "scaling", "terminating", "terminated", "failed"];
const PAGE = 200;
const ROW_HEIGHT = 41;

interface Filters {
  name: string;
  status: string;
  template: string;
  pool: string;
  label: string;
}

function useFilters(): [Filters, (f: Filters) => void] {
  const [params, setParams] = useSearchParams();
  const filters: Filters = {
    name: params.get("name") ?? "",
    status: params.get("status") ?? "",
    template: params.get("template") ?? "",
    pool: params.get("pool") ?? "",
    label: params.get("label") ?? "",
  };
  const set = (f: Filters) => {
    const next = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) next.set(k, v);
    setParams(next, { replace: true });
  };
  return [filters, set];
}

function fetchPage(f: Filters, after?: string) {
  const labels = f.label
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return unwrap(
    api.GET("/api/v1/agents", {
      params: {
        query: {
          name: f.name || undefined,
          status: (f.status || undefined) as AgentStatus | undefined,
          template: f.template || undefined,
          pool: f.pool || undefined,
          label: labels.length ? labels : undefined,
          limit: PAGE,
          after,
        },
      },
    }),
  );
}

function AgentTable({ filters }: { filters: Filters }) {
  const [items, setItems] = useState<Agent[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [stale, setStale] = useState(false);
  const key = JSON.stringify(filters);
  const generation = useRef(0);

  const loadFirst = useCallback(() => {
    const gen = ++generation.current;
    setLoading(true);
    setStale(false);
    fetchPage(filters)
      .then((page) => {
        if (gen !== generation.current) return;
        setItems(page.items);
        setNext(page.next ?? null);
        setTotal(page.total);
        setError(null);
      })
      .catch((e: unknown) => gen === generation.current && setError(e))
      .finally(() => gen === generation.current && setLoading(false));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  useEffect(loadFirst, [loadFirst]);

  const loadMore = useCallback(() => {
    if (!next || loading) return;
    const gen = generation.current;
    setLoading(true);
    fetchPage(filters, next)
      .then((page) => {
        if (gen !== generation.current) return;
        setItems((old) => [...old, ...page.items]);
        setNext(page.next ?? null);
        setTotal(page.total);
      })
      .catch((e: unknown) => gen === generation.current && setError(e))
      .finally(() => gen === generation.current && setLoading(false));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [next, loading, key]);

  // Live: re-read the agents that changed; a new or unknown agent reloads the first page
  // while only one page is shown, else offers a reload.
  const itemsRef = useRef(items);
  itemsRef.current = items;
  useChanges({ kinds: ["agent"] }, (changes) => {
    const announced = announcedVersions(changes, "agent");
    const known = new Set(itemsRef.current.map((a) => a.id));
    if ([...announced.keys()].some((id) => !known.has(id))) {
      if (itemsRef.current.length <= PAGE) loadFirst();
      else setStale(true);
      return;
    }
    for (const [id, version] of announced) {
      readUntil(() => unwrap(api.GET("/api/v1/agents/{ref}", { params: { path: { ref: id } } })), version)
        .then((agent) => setItems((old) => old.map((a) => (a.id === agent.id ? agent : a))))
        .catch(() => undefined);
    }
  });

  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: items.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    initialRect: { width: 1000, height: 600 },
  });
  const virtual = virtualizer.getVirtualItems();
  const lastIndex = virtual[virtual.length - 1]?.index ?? -1;
  useEffect(() => {
    if (lastIndex >= items.length - 20 && next && !loading) loadMore();
  }, [lastIndex, items.length, next, loading, loadMore]);

  const top = virtual[0]?.start ?? 0;
  const bottom = virtualizer.getTotalSize() - (virtual[virtual.length - 1]?.end ?? 0);

  return (
    <section aria-labelledby="agent-list-h">
      <h2 id="agent-list-h" className="visually-hidden">
        Agent list
      </h2>
      <ErrorBox error={error} />
      <p role="status">
        {total === null ? "Loading agents…" : `Showing ${items.length} of ${total} agents`}
        {stale && (
          <>
            {" "}
            — the list has changed.{" "}
            <button type="button" onClick={loadFirst}>
              Reload list
            </button>
          </>
        )}
      </p>
      <div className="table-scroll" ref={scroller} tabIndex={0} aria-label="Agents table, scrollable">
        <table className="agents-table" aria-rowcount={total ?? items.length}>
          <ColumnHeads names={["Name", "Status", "Ready / desired", "Template", "Pool", "Labels"]} />
          <tbody>
            {top > 0 && (
              <tr aria-hidden="true" style={{ height: top }}>
                <td colSpan={6} />
              </tr>
            )}
            {virtual.map((row) => {
              const a = items[row.index];
              if (!a) return null;
              return (
                <tr key={a.id} style={{ height: ROW_HEIGHT }} aria-rowindex={row.index + 2}>
                  <td>
                    <Link to={`/agents/${encodeURIComponent(a.name)}`}>{a.name}</Link>
                  </td>
                  <td>
                    <StatusBadge status={a.status} />
                  </td>
                  <td>
                    {a.ready_replicas ?? 0} / {a.replicas}
                  </td>
                  <td>
                    {a.template}:{a.template_version}
                  </td>
                  <td>{a.pool ?? "—"}</td>
                  <td>
                    {Object.entries(a.labels ?? {})
                      .map(([k, v]) => `${k}=${v}`)
                      .join(", ") || "—"}
                  </td>
                </tr>
              );
            })}
            {bottom > 0 && (
              <tr aria-hidden="true" style={{ height: bottom }}>
                <td colSpan={6} />
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {next && (
        <button type="button" onClick={loadMore} disabled={loading}>
          {loading ? "Loading…" : "Load more"}
        </button>
      )}
    </section>
  );
}

function FilterForm({ filters, onApply }: { filters: Filters; onApply: (f: Filters) => void }) {
  const [draft, setDraft] = useState(filters);
  useEffect(() => setDraft(filters), [filters.name, filters.status, filters.template, filters.pool, filters.label]); // eslint-disable-line react-hooks/exhaustive-deps
  return (
    <form
      className="filters"
      aria-label="Agent filters"
      onSubmit={(e) => {
        e.preventDefault();
        onApply(draft);
      }}
    >
      <div className="field">
        <label htmlFor="f-name">Name contains</label>
        <input id="f-name" type="search" value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} />
      </div>
      <div className="field">
        <label htmlFor="f-status">Status</label>
        <select
          id="f-status"
          value={draft.status}
          onChange={(e) => {
            const f = { ...draft, status: e.target.value };
            setDraft(f);
            onApply(f);
          }}
        >
          <option value="">Any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="f-template">Template</label>
        <input id="f-template" value={draft.template} onChange={(e) => setDraft({ ...draft, template: e.target.value })} />
      </div>
      <div className="field">
        <label htmlFor="f-pool">Pool</label>
        <input id="f-pool" value={draft.pool} onChange={(e) => setDraft({ ...draft, pool: e.target.value })} />
      </div>
      <div className="field">
        <label htmlFor="f-label">Label (key=value)</label>
        <input
          id="f-label"
          placeholder="team=search, tier=1"
          value={draft.label}
          onChange={(e) => setDraft({ ...draft, label: e.target.value })}
        />
      </div>
      <button type="submit">Apply filters</button>
    </form>
  );
}

/** `team=search, tier=gold` as labels, or what is wrong with it. */
export function parseLabels(text: string): Record<string, string> | string {
  const labels: Record<string, string> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    if (at <= 0) return `"${part}" is not key=value`;
    labels[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return labels;
}

export function CreateAgentForm({ onCreated, onCancel }: { onCreated: (a: Agent) => void; onCancel: () => void }) {
  const templates = useLoad(() => unwrap(api.GET("/api/v1/templates")), []);
  const [template, setTemplate] = useState("");
  const [name, setName] = useState("");
  const [replicas, setReplicas] = useState("");
  const [deploy, setDeploy] = useState(true);
  const [config, setConfig] = useState<unknown>({});
  const [labels, setLabels] = useState("");
  const [pool, setPool] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const pools = useLoad(() => unwrap(api.GET("/api/v1/pools")), []);

  const detail = useLoad(
    () =>
      template
        ? unwrap(api.GET("/api/v1/templates/{name}", { params: { path: { name: template } } }))
        : Promise.resolve(null),
    [template],
  );
  const summary = templates.data?.find((t) => t.name === template);
  const version = detail.data?.versions.find((v) => v.version === summary?.latest) ?? detail.data?.versions.at(-1);
  const schema = asSchema(version?.config_schema);
  const hasProperties = Boolean(schema.properties && Object.keys(schema.properties).length);
  const formSchema = hasProperties ? { ...schema, type: "object" } : { type: "object-json" };

  useEffect(() => {
    if (!version) return;
    const defaults = defaultsFor(schema);
    setConfig({ ...(typeof defaults === "object" && defaults ? defaults : {}), ...(version.default_config ?? {}) });
    if (!replicas) setReplicas(String(version.default_replicas ?? 1));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [version?.name, version?.version]);

  const { errors: fieldErrors, at: err, invalid } = fieldErrorsOf(error, fieldId);
  const shown = schemaPaths(formSchema, "config");
  for (const p of ["name", "template", "replicas", "labels", "pool"]) shown.add(p);
  // A refused label (`$.labels.<key>`) is said at the labels field.
  const labelErrors = Object.entries(fieldErrors).filter(([k]) => k === "labels" || k.startsWith("labels."));
  for (const [k] of labelErrors) shown.add(k);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(null);
    const parsed = parseLabels(labels);
    if (typeof parsed === "string") {
      setError(ApiError.local("labels", parsed));
      return;
    }
    setBusy(true);
    try {
      const agent = await unwrap(
        api.POST("/api/v1/agents", {
          body: {
            name,
            template,
            labels: parsed,
            pool: pool || null,
            replicas: replicas === "" ? null : Number(replicas),
            config: (config ?? {}) as Record<string, unknown>,
            deploy,
            dry_run: false,
          },
          params: { header: { "Idempotency-Key": idempotencyKey() } },
        }),
      );
      onCreated(agent);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="create-h">
      <h2 id="create-h">Create agent</h2>
      <form onSubmit={submit} noValidate>
        <FormError error={error} errors={fieldErrors} placed={shown} what="the agent" />
        <div className="field">
          <label htmlFor={fieldId("template")}>Template</label>
          <select id={fieldId("template")} value={template} onChange={(e) => setTemplate(e.target.value)} required {...invalid("template")}>
            <option value="">Choose a template</option>
            {templates.data?.map((t) => (
              <option key={t.name} value={t.name}>
                {t.name} (v{t.latest}){t.description ? ` — ${t.description}` : ""}
              </option>
            ))}
          </select>
          {err("template")}
          <ErrorBox error={templates.error} />
        </div>
        <div className="field">
          <label htmlFor={fieldId("name")}>Name</label>
          <input id={fieldId("name")} value={name} onChange={(e) => setName(e.target.value)} required autoComplete="off" {...invalid("name")} />
          <p className="hint">Lowercase letters, digits and '-', e.g. my-agent-1.</p>
          {err("name")}
        </div>
        <div className="field">
          <label htmlFor={fieldId("replicas")}>Replicas</label>
          <input
            id={fieldId("replicas")}
            type="number"
            min={0}
            max={10000}
            value={replicas}
            onChange={(e) => setReplicas(e.target.value)}
            {...invalid("replicas")}
          />
          {err("replicas")}
        </div>
        <div className="field">
          <label htmlFor={fieldId("labels")}>Labels</label>
          <input
            id={fieldId("labels")}
            value={labels}
            onChange={(e) => setLabels(e.target.value)}
            autoComplete="off"
            placeholder="team=search, tier=gold"
            aria-invalid={labelErrors.length > 0}
            aria-describedby={`create-labels-hint${labelErrors.length ? ` ${fieldId("labels")}-error` : ""}`}
          />
          <p className="hint" id="create-labels-hint">
            key=value pairs, separated by commas.
          </p>
          {labelErrors.length > 0 && (
            <p className="field-error" id={`${fieldId("labels")}-error`}>
              {labelErrors.map(([k, m]) => (k === "labels" ? m : `${k.slice("labels.".length)}: ${m}`)).join("; ")}
            </p>
          )}
        </div>
        <div className="field">
          <label htmlFor={fieldId("pool")}>Pool</label>
          <select id={fieldId("pool")} value={pool} onChange={(e) => setPool(e.target.value)} {...invalid("pool")}>
            <option value="">No pool</option>
            {pools.data?.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
          {err("pool")}
        </div>
        <div className="field field-check">
          <input id="create-deploy" type="checkbox" checked={deploy} onChange={(e) => setDeploy(e.target.checked)} />
          <label htmlFor="create-deploy">Deploy now</label>
        </div>
        {template && (
          <SchemaField
            key={`${template}:${version?.version ?? ""}`}
            schema={formSchema}
            path="config"
            label="Config"
            value={config}
            onChange={setConfig}
            errors={fieldErrors}
          />
        )}
        <div className="actions">
          <button type="submit" disabled={busy || !template}>
            {busy ? "Creating…" : "Create"}
          </button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </section>
  );
}

export default function Agents() {
  const [filters, setFilters] = useFilters();
  const [creating, setCreating] = useState(false);
  const navigate = useNavigate();
  const can = useCan();
  return (
    <>
      <div className="page-head">
        <h1>Agents</h1>
        {!creating && can("operator") && (
          <button type="button" onClick={() => setCreating(true)}>
            Create agent
          </button>
        )}
      </div>
      {creating && (
        <CreateAgentForm
          onCancel={() => setCreating(false)}
          onCreated={(a) => navigate(`/agents/${encodeURIComponent(a.name)}`)}
        />
      )}
      <FilterForm filters={filters} onApply={setFilters} />
      <AgentTable filters={filters} />
    </>
  );
}
