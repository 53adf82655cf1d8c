import type { Schemas } from "../api/client";
import { StatusBadge, toneOf } from "./Status";

type Step = Schemas["StepView"];

export interface PlacedStep {
  step: Step;
  /** Percent of the chart's width. */
  left: number;
  width: number;
}

export interface Lane {
  steps: PlacedStep[];
}

function ms(t: string | null | undefined): number | null {
  if (!t) return null;
  const v = Date.parse(t);
  return Number.isNaN(v) ? null : v;
}

/**
 * Lays the steps out as a Gantt chart. Steps outside a parallel group run one after another and
 * share lane 0; the i-th step of a parallel group goes to lane i, so the steps of a group that
 * run at the same time are always in separate lanes.
 */
export function layoutTimeline(steps: readonly Step[], start: string, end: string | null, now = Date.now()): Lane[] {
  const t0 = ms(start) ?? now;
  let t1 = ms(end) ?? now;
  for (const s of steps) t1 = Math.max(t1, ms(s.finished_at) ?? ms(s.started_at) ?? t1);
  const span = Math.max(t1 - t0, 1);

  const lanes: Lane[] = [];
  const indexInGroup = new Map<string, number>();
  for (const step of steps) {
    let lane = 0;
    if (step.parent) {
      lane = indexInGroup.get(step.parent) ?? 0;
      indexInGroup.set(step.parent, lane + 1);
    }
    while (lanes.length <= lane) lanes.push({ steps: [] });
    const s = ms(step.started_at);
    const f = ms(step.finished_at) ?? (s !== null ? now : null);
    const left = s === null ? 100 : ((s - t0) / span) * 100;
    const right = f === null ? 100 : ((f - t0) / span) * 100;
    const clampedLeft = Math.min(Math.max(left, 0), 100);
    lanes[lane]?.steps.push({
      step,
      left: clampedLeft,
      width: Math.max(Math.min(right, 100) - clampedLeft, 0),
    });
  }
  return lanes;
}

function duration(step: Step): string {
  const s = ms(step.started_at);
  const f = ms(step.finished_at);
  if (s === null) return "not started";
  if (f === null) return "running";
  const d = f - s;
  return d < 1000 ? `${d} ms` : `${(d / 1000).toFixed(2)} s`;
}

export function Timeline({ execution }: { execution: Schemas["ExecutionView"] }) {
  const lanes = layoutTimeline(execution.steps, execution.started_at, execution.finished_at ?? null);
  return (
    <div className="timeline" role="list" aria-label="Timeline">
      {lanes.map((lane, i) => (
        <div className="lane" key={i} role="listitem" aria-label={`Lane ${i + 1}`}>
          <span className="lane-name" aria-hidden="true">
            {i + 1}
          </span>
          <div className="lane-track">
            {lane.steps.map(({ step, left, width }) => (
              <div
                key={step.id}
                className={`bar bar-${toneOf(step.status)}`}
                data-step={step.id}
                style={{ left: `${Math.min(left, 96)}%`, width: `max(${width}%, 4px)` }}
                title={`${step.id}: ${step.status}, ${duration(step)}, attempts ${step.attempts ?? 0}`}
              >
                <span className="bar-label">
                  {step.id} <StatusBadge status={step.status} />
                  {(step.attempts ?? 0) > 1 && ` ×${step.attempts}`}
                </span>
              </div>
            ))}
          </div>
        </div>
      ))}
    </div>
  );
}

export { duration as stepDuration };
