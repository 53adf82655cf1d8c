import { useId } from "react";

/**
 * A small inline SVG line chart (no chart library: the bundle stays small). Nulls are gaps.
 * The legend names every line with its latest value as text, so colour is never the only signal;
 * the svg itself is one image whose label sums up the latest values.
 */

export interface ChartLine {
  label: string;
  /** One value per time; null where nothing was measured. */
  values: readonly (number | null)[];
}

interface Props {
  title: string;
  /** Unix seconds, one per value. */
  times: readonly number[];
  lines: readonly ChartLine[];
  /** Formats a value for the axis, the legend and the label, unit included. */
  format: (value: number) => string;
}

const WIDTH = 320;
const HEIGHT = 120;
const PAD = { left: 4, right: 4, top: 6, bottom: 6 };
const COLOURS = ["#1f5fbf", "#b3261e", "#1b7f3b", "#a05a00", "#6b3fa0", "#00707a", "#5a6572", "#c2185b"];
const DASHES = [undefined, "6 3", "2 3", "8 3 2 3"];

export function lineStyle(index: number): { stroke: string; dash: string | undefined } {
  return { stroke: COLOURS[index % COLOURS.length] ?? "#1f5fbf", dash: DASHES[Math.floor(index / COLOURS.length) % DASHES.length] };
}

/** The last value of a line, null when the last sample is a gap. */
export function latest(values: readonly (number | null)[]): number | null {
  return values.length ? (values[values.length - 1] ?? null) : null;
}

/** Y range: from 0 (or the lowest value, if below 0) to the highest value, never empty. */
export function yRange(lines: readonly ChartLine[]): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const l of lines)
    for (const v of l.values) {
      if (v === null || !Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  if (lo === Infinity) return null;
  lo = Math.min(lo, 0);
  if (hi <= lo) hi = lo + 1;
  return [lo, hi];
}

/**
 * SVG path data for one line: a new subpath (`M`) after each gap, so nulls are never bridged.
 * A point alone between gaps is returned separately, to be drawn as a dot.
 */
export function linePath(
  times: readonly number[],
  values: readonly (number | null)[],
  x: (t: number) => number,
  y: (v: number) => number,
): { d: string; dots: [number, number][] } {
  const parts: string[] = [];
  const dots: [number, number][] = [];
  let run: [number, number][] = [];
  const flush = () => {
    if (run.length === 1 && run[0]) dots.push(run[0]);
    else if (run.length > 1) parts.push(run.map(([px, py], i) => `${i === 0 ? "M" : "L"}${px.toFixed(1)},${py.toFixed(1)}`).join(" "));
    run = [];
  };
  values.forEach((v, i) => {
    const t = times[i];
    if (v === null || t === undefined || !Number.isFinite(v)) flush();
    else run.push([x(t), y(v)]);
  });
  flush();
  return { d: parts.join(" "), dots };
}

function clock(t: number): string {
  return new Date(t * 1000).toLocaleTimeString();
}

export function LineChart({ title, times, lines, format }: Props) {
  const captionId = useId();
  const range = yRange(lines);
  const t0 = times[0];
  const t1 = times[times.length - 1];
  const show = (v: number | null) => (v === null ? "no value" : format(v));
  const summary = lines.length
    ? `${title}, latest: ${lines.map((l) => `${l.label} ${show(latest(l.values))}`).join("; ")}`
    : `${title}: no data`;

  let plot = null;
  if (range && t0 !== undefined && t1 !== undefined) {
    const [lo, hi] = range;
    const span = Math.max(t1 - t0, 1);
    const x = (t: number) => PAD.left + ((t - t0) / span) * (WIDTH - PAD.left - PAD.right);
    const y = (v: number) => PAD.top + (1 - (v - lo) / (hi - lo)) * (HEIGHT - PAD.top - PAD.bottom);
    plot = (
      <>
        <line className="chart-axis" x1={PAD.left} y1={HEIGHT - PAD.bottom} x2={WIDTH - PAD.right} y2={HEIGHT - PAD.bottom} />
        <line className="chart-top" x1={PAD.left} y1={PAD.top} x2={WIDTH - PAD.right} y2={PAD.top} />
        {lines.map((l, i) => {
          const { d, dots } = linePath(times, l.values, x, y);
          const { stroke, dash } = lineStyle(i);
          return (
            <g key={l.label} data-line={l.label} stroke={stroke} fill={stroke}>
              {d && <path d={d} fill="none" strokeWidth={1.75} vectorEffect="non-scaling-stroke" strokeDasharray={dash} strokeLinejoin="round" />}
              {dots.map(([px, py]) => (
                <circle key={`${px},${py}`} cx={px} cy={py} r={2} stroke="none" />
              ))}
            </g>
          );
        })}
      </>
    );
  }

  return (
    <figure className="chart card" aria-labelledby={captionId}>
      <figcaption id={captionId}>{title}</figcaption>
      {range && t0 !== undefined && t1 !== undefined ? (
        <div className="chart-body">
          <div className="chart-y" aria-hidden="true">
            <span>{format(range[1])}</span>
            <span>{format(range[0])}</span>
          </div>
          <div className="chart-plot">
            <svg role="img" aria-label={summary} viewBox={`0 0 ${WIDTH} ${HEIGHT}`}>
              {plot}
            </svg>
            <div className="chart-x" aria-hidden="true">
              <span>{clock(t0)}</span>
              <span>{clock(t1)}</span>
            </div>
          </div>
        </div>
      ) : (
        <p className="muted">No values in this window.</p>
      )}
      {lines.length > 0 && (
        <ul className="chart-legend" aria-label={`${title} legend`}>
          {lines.map((l, i) => {
            const { stroke, dash } = lineStyle(i);
            const v = latest(l.values);
            return (
              <li key={l.label}>
                <svg className="chart-swatch" aria-hidden="true" width="20" height="8" viewBox="0 0 20 8">
                  <line x1="0" y1="4" x2="20" y2="4" stroke={stroke} strokeWidth="2.5" strokeDasharray={dash} />
                </svg>
                <span className="chart-line-label">{l.label}</span>:{" "}
                <span className="chart-latest">{v === null ? <span title="no value at the latest sample">—</span> : format(v)}</span>
              </li>
            );
          })}
        </ul>
      )}
    </figure>
  );
}
