import { Link } from "react-router-dom";
import { api, unwrap, type AgentStatus, type Schemas } from "../api/client";
import { useChanges } from "../changes";
import { useStreamEvents } from "../lib/liveEvents";
import { ErrorBox } from "../components/ErrorBox";
import { StatusBadge } from "../components/Status";
import { useLoad } from "../lib/useLoad";
import { PageHead, ColumnHeads } from "../components/PageHead";

const AGENT_STATUSES: AgentStatus[] = ["created", "deploying", "running", "scaling", "terminating", "terminated", "failed"];

interface OverviewData {
  status: Schemas["Status"];
  hosts: Schemas["HostView"][];
  agentCounts: [AgentStatus, number][];
  failedAgents: Schemas["AgentView"][];
  deadLetters: number;
  running: Schemas["ExecutionPage"];
  failing: Schemas["ExecutionView"][];
  /** Messages handled per second over the last sample, null before the first two samples. */
  messagesPerSecond: number | null;
}

/** The newest value of a summed series: what the Metrics page draws last for it. */
export function latestSum(history: Schemas["MetricsHistory"], name: string): number | null {
  const series = history.series.filter((s) => s.name === name);
  for (let i = history.times.length - 1; i >= 0; i--) {
    const values = series.map((s) => s.values[i]).filter((v): v is number => typeof v === "number");
    if (values.length > 0) return values.reduce((a, b) => a + b, 0);
  }
  return null;
}

async function loadOverview(): Promise<OverviewData> {
  const [status, hosts, counts, failedAgents, dlq, running, failing, history] = await Promise.all([
    unwrap(api.GET("/api/v1/status")),
    unwrap(api.GET("/api/v1/hosts")),
    Promise.all(
      AGENT_STATUSES.map(async (s) => {
        const page = await unwrap(api.GET("/api/v1/agents", { params: { query: { status: s, limit: 1 } } }));
        return [s, page.total] as [AgentStatus, number];
      }),
    ),
    unwrap(api.GET("/api/v1/agents", { params: { query: { status: "failed", limit: 20 } } })),
    unwrap(api.GET("/api/v1/dlq", { params: { query: { limit: 1 } } })),
    unwrap(api.GET("/api/v1/executions", { params: { query: { status: "running", limit: 100 } } })),
    unwrap(api.GET("/api/v1/executions", { params: { query: { status: "failed", limit: 10 } } })),
    // The figure is a nicety: without it (history not sampled yet) the overview still shows.
    unwrap(api.GET("/api/v1/metrics/history", { params: { query: { window: "15m" } } })).catch(() => null),
  ]);
  return {
    status,
    hosts,
    agentCounts: counts,
    failedAgents: failedAgents.items,
    deadLetters: dlq.total,
    running,
    failing: failing.items,
    messagesPerSecond: history ? latestSum(history, "messages_per_second") : null,
  };
}

function mib(bytes: number | undefined): string {
  return `${((bytes ?? 0) / 1048576).toFixed(0)} MiB`;
}

/** A stream's size: KiB under a MiB, so that a small stream does not read "0 MiB". */
function size(bytes: number): string {
  return bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : mib(bytes);
}

export default function Overview() {
  const { data, error, loading, reload } = useLoad(loadOverview, []);
  useChanges({ kinds: ["agent", "host", "execution"] }, reload, 1000);
  // The dead-letter count and its alert move with the queue, which is not a platform change.
  useStreamEvents("/api/v1/dlq/events", "dead_letter", reload);

  const unhealthyHosts = data?.hosts.filter((h) => h.health !== "healthy") ?? [];
  const alertCount =
    (data?.failedAgents.length ?? 0) + unhealthyHosts.length + (data && data.deadLetters > 0 ? 1 : 0) + (data?.failing.length ?? 0);

  return (
    <>
      <PageHead title="Overview" onRefresh={reload} busy={loading} />
      <ErrorBox error={error} />
      {!data && loading && <p aria-busy="true">Loading…</p>}
      {data && (
        <>
          <section aria-labelledby="alerts-h" className="card">
            <h2 id="alerts-h">Alerts</h2>
            {alertCount === 0 ? (
              <p>No alerts.</p>
            ) : (
              <ul className="alerts">
                {data.failedAgents.map((a) => (
                  <li key={a.id}>
                    <StatusBadge status="failed" /> Agent <Link to={`/agents/${encodeURIComponent(a.name)}`}>{a.name}</Link>{" "}
                    failed{a.status_reason ? `: ${a.status_reason}` : ""}
                  </li>
                ))}
                {unhealthyHosts.map((h) => (
                  <li key={h.id}>
                    <StatusBadge status={h.health} /> Host <a href="#hosts-h">{h.hostname}</a> ({h.id}) is {h.health}
                  </li>
                ))}
                {data.deadLetters > 0 && (
                  <li>
                    <StatusBadge status="error" /> <Link to="/dlq">{data.deadLetters} dead letters</Link> waiting
                  </li>
                )}
                {data.failing.map((x) => (
                  <li key={x.id}>
                    <StatusBadge status="failed" /> Execution <Link to={`/executions/${x.id}`}>{x.template}</Link> failed
                    {x.error ? `: ${x.error}` : ""}
                  </li>
                ))}
              </ul>
            )}
          </section>

          <div className="grid">
            <section aria-labelledby="agents-h" className="card">
              <h2 id="agents-h">Agents by status</h2>
              <dl className="counts">
                {data.agentCounts.map(([s, n]) => (
                  <div key={s}>
                    <dt>
                      <Link to={`/agents?status=${s}`}>
                        <StatusBadge status={s} />
                      </Link>
                    </dt>
                    <dd>{n}</dd>
                  </div>
                ))}
              </dl>
            </section>
            <section aria-labelledby="work-h" className="card">
              <h2 id="work-h">Work</h2>
              <dl className="counts">
                <div>
                  <dt>
                    <Link to="/dlq">Dead letters</Link>
                  </dt>
                  <dd>{data.deadLetters}</dd>
                </div>
                <div>
                  <dt>
                    <Link to="/workflows?status=running">Running executions</Link>
                  </dt>
                  <dd>
                    {data.running.items.length}
                    {data.running.next ? "+" : ""}
                  </dd>
                </div>
                <div>
                  <dt>
                    <Link to="/metrics">Messages per second</Link>
                  </dt>
                  <dd>{data.messagesPerSecond === null ? "–" : data.messagesPerSecond.toFixed(1)}</dd>
                </div>
              </dl>
            </section>
          </div>

          <section aria-labelledby="hosts-h" className="card">
            <h2 id="hosts-h">Hosts</h2>
            {data.hosts.length === 0 ? (
              <p>No agent hosts.</p>
            ) : (
              <table>
                <ColumnHeads names={["Host", "Health", "CPU", "Memory", "Replicas", "Capacity"]} />
                <tbody>
                  {data.hosts.map((h) => (
                    <tr key={h.id}>
                      <td>
                        {h.hostname} <small>{h.id}</small>
                      </td>
                      <td>
                        <StatusBadge status={h.health} />
                      </td>
                      <td>{(h.cpu_percent ?? 0).toFixed(1)} %</td>
                      <td>{mib(h.rss_bytes)}</td>
                      <td>{h.replicas ?? 0}</td>
                      <td>{h.capacity ?? 0}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>

          <section aria-labelledby="services-h" className="card">
            <h2 id="services-h">Services</h2>
            <p>
              NATS {data.status.nats.server_version ?? ""} ({data.status.nats.connected ? "connected" : "not connected"}) · gateway {data.status.version} · as of {new Date(data.status.time).toLocaleTimeString()}
            </p>
            <table>
              <ColumnHeads names={["Service", "Versions", "Instances", "Quarantined events"]} />
              <tbody>
                {data.status.services.map((s) => (
                  <tr key={s.name}>
                    <td>{s.name}</td>
                    <td>{s.versions.join(", ")}</td>
                    <td>
                      {s.instances.length}
                      <ul className="plain">
                        {s.instances.map((i) => (
                          <li key={i.id}>
                            <small>
                              {i.id} v{i.version}
                            </small>
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>{s.quarantined?.length ?? 0}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>

          <section aria-labelledby="streams-h" className="card">
            <h2 id="streams-h">NATS streams</h2>
            {(data.status.nats.streams ?? []).length === 0 ? (
              <p>No streams (NATS not reached).</p>
            ) : (
              <table>
                <ColumnHeads names={["Stream", "Messages", "Size", "Consumers"]} />
                <tbody>
                  {(data.status.nats.streams ?? []).map((st) => (
                    <tr key={st.name}>
                      <td>{st.name}</td>
                      <td>{st.messages.toLocaleString()}</td>
                      <td>{size(st.bytes)}</td>
                      <td>{st.consumers}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        </>
      )}
    </>
  );
}
