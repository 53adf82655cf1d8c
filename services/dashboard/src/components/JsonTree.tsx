/** A collapsible JSON tree built from <details>, keyboard accessible by default. */
export function JsonTree({ value, name, open = true }: { value: unknown; name?: string; open?: boolean }) {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value as Record<string, unknown>);
    const brackets = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
    return (
      <details className="json-node" open={open}>
        <summary>
          {name !== undefined && <span className="json-key">{name}: </span>}
          {brackets[0]}
          {entries.length === 0 ? brackets[1] : ` ${entries.length} `}
          {entries.length > 0 && brackets[1]}
        </summary>
        <ul className="json-children">
          {entries.map(([k, v]) => (
            <li key={k}>
              <JsonTree value={v} name={k} open={false} />
            </li>
          ))}
        </ul>
      </details>
    );
  }
  return (
    <span className="json-leaf">
      {name !== undefined && <span className="json-key">{name}: </span>}
      <span className={`json-${value === null ? "null" : typeof value}`}>{JSON.stringify(value) ?? "undefined"}</span>
    </span>
  );
}

/** Flattens a JSON value into path → JSON text, for diffs. */
export function flatten(value: unknown, prefix = "$", out: Map<string, string> = new Map()): Map<string, string> {
  if (value !== null && typeof value === "object" && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      flatten(v, Array.isArray(value) ? `${prefix}[${k}]` : `${prefix}.${k}`, out);
    }
  } else {
    out.set(prefix, JSON.stringify(value) ?? "undefined");
  }
  return out;
}

export interface DiffLine {
  path: string;
  kind: "added" | "removed" | "changed";
  before?: string;
  after?: string;
}

export function diffJson(before: unknown, after: unknown): DiffLine[] {
  const a = flatten(before);
  const b = flatten(after);
  const lines: DiffLine[] = [];
  for (const [path, v] of a) {
    const w = b.get(path);
    if (w === undefined) lines.push({ path, kind: "removed", before: v });
    else if (w !== v) lines.push({ path, kind: "changed", before: v, after: w });
  }
  for (const [path, w] of b) if (!a.has(path)) lines.push({ path, kind: "added", after: w });
  return lines.sort((x, y) => x.path.localeCompare(y.path));
}
