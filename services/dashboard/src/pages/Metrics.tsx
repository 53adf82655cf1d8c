import { useEffect, useState } from "react";
import type { paths } from "../api/gateway";
import { api, unwrap, type Schemas } from "../api/client";
import { ErrorBox } from "../components/ErrorBox";
import { LineChart, type ChartLine } from "../components/LineChart";
import { useLoad } from "../lib/useLoad";
import { PageHead } from "../components/PageHead";

type Series = Schemas["MetricSeries"];
type Window = NonNullable<NonNullable<paths["/api/v1/metrics/history"]["get"]["parameters"]["query"]>["window"]>;

const WINDOWS: [Window, string][] = [
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
];

/** The least time between two reads, whatever `step` says. */
const MIN_REFRESH_SECONDS = 5;

function number(v: number, digits = 2): string {
  return v.toLocaleString(undefined, { maximumFractionDigits: digits });
}

interface ChartSpec {
  title: string;
  format: (v: number) => string;
  /** Names one line of the chart from its series' labels. */
  lineLabel?: (labels: Record<string, string>) => string;
}

function quantile(labels: Record<string, string>): string {
  const q = labels.quantile ?? "";
  const n = Number(q);
  return q !== "" && Number.isFinite(n) && n > 0 && n < 1 ? `p${Math.round(n * 100)}` : q;
}

/** The charts, in order, by series name. */
export const CHARTS: Record<string, ChartSpec> = {
  messages_per_second: { title: "Messages per second", format: (v) => `${number(v)} msg/s` },
  delivery_latency_seconds: { title: "Delivery latency", format: (v) => `${number(v * 1000, 1)} ms`, lineLabel: quantile },
  agents: { title: "Agents by status", format: (v) => `${number(v, 0)} agents`, lineLabel: (l) => l.status ?? "" },
  host_cpu_cores: { title: "Host CPU", format: (v) => `${number(v)} cores`, lineLabel: (l) => l.host ?? "" },
  host_memory_bytes: { title: "Host memory", format: (v) => `${number(v / 1048576, 0)} MiB`, lineLabel: (l) => l.host ?? "" },
  executions_per_second: { title: "Executions per second", format: (v) => `${number(v)} exec/s` },
};

function labelOf(series: Series, spec: ChartSpec | undefined, fallback: string): string {
  const labels = series.labels ?? {};
  const named = spec?.lineLabel?.(labels) || Object.values(labels).join(", ");
  return named || fallback;
}

export interface Chart {
  name: string;
  title: string;
  format: (v: number) => string;
  lines: ChartLine[];
}

/** Groups the series into one chart per name: the known charts first, then any other series. */
export function chartsOf(series: readonly Series[]): Chart[] {
  const names = [...Object.keys(CHARTS), ...new Set(series.map((s) => s.name).filter((n) => !(n in CHARTS)))];
  return names.map((name) => {
    const spec = CHARTS[name];
    const title = spec?.title ?? name;
    const unit = series.find((s) => s.name === name)?.unit ?? "";
    const lines = series
      .filter((s) => s.name === name)
      .map((s) => ({ label: labelOf(s, spec, title), values: s.values }))
      .sort((a, b) => a.label.localeCompare(b.label, undefined, { numeric: true }));
    return { name, title, format: spec?.format ?? ((v: number) => `${number(v)}${unit ? ` ${unit}` : ""}`), lines };
  });
}

const SOURCE_TEXT: Record<Schemas["MetricsHistory"]["source"], string> = {
  gateway: "sampled by the gateway",
  prometheus: "from Prometheus",
};

export default function Metrics() {
  const [win, setWin] = useState<Window>("15m");
  const { data, error, loading, reload } = useLoad(
    () => unwrap(api.GET("/api/v1/metrics/history", { params: { query: { window: win } } })),
    [win],
  );
  const every = Math.max(data?.step ?? 0, MIN_REFRESH_SECONDS);

  // A time series: read again every `step` seconds while the page is open.
  useEffect(() => {
    if (loading) return undefined;
    const timer = setTimeout(reload, every * 1000);
    return () => clearTimeout(timer);
  }, [loading, every, reload]);

  return (
    <>
      <PageHead title="Metrics" onRefresh={reload} busy={loading} />
      <fieldset className="radio-group">
        <legend>Window</legend>
        {WINDOWS.map(([value, label]) => (
          <label key={value}>
            <input type="radio" name="metrics-window" value={value} checked={win === value} onChange={() => setWin(value)} />{" "}
            {label}
          </label>
        ))}
      </fieldset>
      <ErrorBox error={error} />
      {!data && loading && <p aria-busy="true">Loading…</p>}
      {data && (
        <>
          <p className="muted">
            Source: {SOURCE_TEXT[data.source] ?? data.source} · one value every {number(data.step, 1)} s · refreshed every{" "}
            {number(every, 1)} s
          </p>
          {data.times.length === 0 ? (
            <p>No samples yet</p>
          ) : (
            <div className="chart-grid">
              {chartsOf(data.series).map((c) => (
                <LineChart key={c.name} title={c.title} times={data.times} lines={c.lines} format={c.format} />
              ))}
            </div>
          )}
        </>
      )}
    </>
  );
}
