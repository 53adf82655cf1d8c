import { useEffect, useRef, useState } from "react";
import type { paths } from "../api/gateway";
import { api, authHeaders, notifyUnauthorized, unwrap, type Schemas } from "../api/client";
import { followSSE, type StreamState } from "../lib/sse";
import { ErrorBox } from "./ErrorBox";
import { StatusBadge } from "./Status";

type LogLine = Schemas["LogLine"];
export type LogQuery = NonNullable<paths["/api/v1/logs"]["get"]["parameters"]["query"]>;
type StreamQuery = NonNullable<paths["/api/v1/logs/stream"]["get"]["parameters"]["query"]>;

const MAX_LINES = 2000;

export function streamUrl(query: StreamQuery): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  return `/api/v1/logs/stream?${params.toString()}`;
}

function field(line: LogLine, key: string): string {
  const v = line.line[key];
  return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
}

const LEVEL_TONE: Record<string, string> = { warning: "retrying", error: "error", critical: "error" };

/** Log lines for a query, newest first; `follow` adds new lines live from the stream. */
export function LogPanel({ query, follow, label }: { query: LogQuery; follow: boolean; label: string }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [lastSeq, setLastSeq] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [stream, setStream] = useState<StreamState>("closed");
  const key = JSON.stringify(query);
  const seen = useRef(new Set<number>());

  useEffect(() => {
    let live = true;
    setLoading(true);
    setLines([]);
    seen.current = new Set();
    unwrap(api.GET("/api/v1/logs", { params: { query: { limit: 100, ...query } } }))
      .then((page) => {
        if (!live) return;
        page.items.forEach((l) => seen.current.add(l.seq));
        setLines(page.items);
        setNext(page.next ?? null);
        setLastSeq(page.last_seq);
        setError(null);
      })
      .catch((e: unknown) => live && setError(e))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);

  useEffect(() => {
    if (!follow || lastSeq === null) return undefined;
    const controller = new AbortController();
    const { limit: _limit, before: _before, until: _until, ...rest } = query;
    void followSSE({
      url: streamUrl({ ...rest, after: lastSeq }),
      headers: () => authHeaders(),
      signal: controller.signal,
      onUnauthorized: notifyUnauthorized,
      onState: setStream,
      onMessage: (m) => {
        if (m.event !== "log") return;
        let line: LogLine;
        try {
          line = JSON.parse(m.data) as LogLine;
        } catch {
          return;
        }
        if (seen.current.has(line.seq)) return;
        seen.current.add(line.seq);
        setLines((old) => [line, ...old].slice(0, MAX_LINES));
      },
    });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [follow, lastSeq === null, key]);

  function older() {
    if (!next) return;
    setLoading(true);
    unwrap(api.GET("/api/v1/logs", { params: { query: { limit: 100, ...query, before: next } } }))
      .then((page) => {
        page.items.forEach((l) => seen.current.add(l.seq));
        setLines((old) => [...old, ...page.items]);
        setNext(page.next ?? null);
      })
      .catch(setError)
      .finally(() => setLoading(false));
  }

  return (
    <div className="log-panel">
      <ErrorBox error={error} />
      <p role="status" className="muted">
        {loading ? "Loading…" : `${lines.length} lines`}
        {follow && ` · following: ${stream}`}
      </p>
      <ol className="log-lines" aria-label={label}>
        {lines.map((l) => {
          const level = field(l, "level");
          return (
            <li key={l.seq} className={`log-line level-${level}`}>
              <time dateTime={field(l, "timestamp") || l.stored_at}>
                {new Date(field(l, "timestamp") || l.stored_at).toLocaleTimeString()}
              </time>{" "}
              <StatusBadge status={level || "info"} label={LEVEL_TONE[level]} /> <span className="log-service">{field(l, "service")}</span>{" "}
              <span className="log-event">{field(l, "event")}</span>
              {field(l, "agent_name") && <span className="muted"> agent={field(l, "agent_name")}</span>}
              <details>
                <summary>Line {l.seq} as JSON</summary>
                <pre>{JSON.stringify(l.line, null, 2)}</pre>
              </details>
            </li>
          );
        })}
      </ol>
      {next && (
        <button type="button" onClick={older} disabled={loading}>
          Load older lines
        </button>
      )}
    </div>
  );
}
