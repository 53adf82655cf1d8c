import { useState } from "react";
import { LogPanel, type LogQuery } from "../components/LogPanel";

const SERVICES = ["gateway", "registry", "lifecycle", "messaging", "workflow", "host"];
const LEVELS = ["debug", "info", "warning", "error", "critical"] as const;
type Level = (typeof LEVELS)[number];

function iso(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export default function Logs() {
  const [draft, setDraft] = useState({ service: "", level: "", agent: "", text: "", since: "", until: "" });
  const [query, setQuery] = useState<LogQuery>({});
  const [follow, setFollow] = useState(false);
  const set = (k: keyof typeof draft) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });

  return (
    <>
      <h1>Logs</h1>
      <form
        className="filters"
        aria-label="Log search"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery({
            service: draft.service || undefined,
            level: (draft.level || undefined) as Level | undefined,
            agent: draft.agent || undefined,
            text: draft.text || undefined,
            since: iso(draft.since),
            until: iso(draft.until),
          });
        }}
      >
        <div className="field">
          <label htmlFor="l-service">Service</label>
          <select id="l-service" value={draft.service} onChange={set("service")}>
            <option value="">Any</option>
            {SERVICES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="l-level">Level</label>
          <select id="l-level" value={draft.level} onChange={set("level")}>
            <option value="">Any</option>
            {LEVELS.map((s) => (
              <option key={s} value={s}>
                {s} or worse
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="l-agent">Agent</label>
          <input id="l-agent" value={draft.agent} onChange={set("agent")} />
        </div>
        <div className="field">
          <label htmlFor="l-text">Text</label>
          <input id="l-text" value={draft.text} onChange={set("text")} minLength={3} maxLength={200} />
        </div>
        <div className="field">
          <label htmlFor="l-since">Since</label>
          <input id="l-since" type="datetime-local" value={draft.since} onChange={set("since")} />
        </div>
        <div className="field">
          <label htmlFor="l-until">Until</label>
          <input id="l-until" type="datetime-local" value={draft.until} onChange={set("until")} />
        </div>
        <button type="submit">Search</button>
        <div className="field field-check">
          <input id="l-follow" type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} />
          <label htmlFor="l-follow">Follow</label>
        </div>
      </form>
      <LogPanel query={query} follow={follow} label="Log lines, newest first" />
    </>
  );
}
