import type { ReactNode } from "react";

/** A page's title with its Refresh button (and any other actions as children). */
export function PageHead({
  title,
  onRefresh,
  busy,
  children,
}: {
  title: string;
  onRefresh: () => void;
  busy: boolean;
  children?: ReactNode;
}) {
  return (
    <div className="page-head">
      <h1>{title}</h1>
      {children}
      <button type="button" onClick={onRefresh} disabled={busy}>
        Refresh
      </button>
    </div>
  );
}

/** A table's header row of plain column names. */
export function ColumnHeads({ names }: { names: readonly string[] }) {
  return (
    <thead>
      <tr>
        {names.map((name) => (
          <th key={name} scope="col">
            {name}
          </th>
        ))}
      </tr>
    </thead>
  );
}
