/** A status shown as text and colour (the colour is never the only signal). */

type Tone = "ok" | "warn" | "bad" | "idle" | "busy";

const TONES: Record<string, Tone> = {
  running: "ok",
  healthy: "ok",
  succeeded: "ok",
  replied: "ok",
  acked: "ok",
  created: "idle",
  pending: "idle",
  terminated: "idle",
  skipped: "idle",
  cancelled: "idle",
  gone: "idle",
  deploying: "busy",
  scaling: "busy",
  starting: "busy",
  stopping: "busy",
  retrying: "warn",
  terminating: "warn",
  unhealthy: "warn",
  accepted: "busy",
  failed: "bad",
  error: "bad",
  dead_lettered: "bad",
};

export function toneOf(status: string): Tone {
  return TONES[status] ?? "idle";
}

export function StatusBadge({ status, label }: { status: string; label?: string }) {
  const tone = toneOf(status);
  return (
    <span className={`status status-${tone}`} data-tone={tone} title={label}>
      <span className="status-dot" aria-hidden="true" />
      {status}
    </span>
  );
}
