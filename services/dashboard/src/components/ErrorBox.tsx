import { ApiError } from "../api/client";

export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 403) {
      return `Forbidden (403): your token's role is too low for this. ${error.problem?.detail ?? ""}`.trim();
    }
    const code = error.problem?.code ? ` ${error.problem.code}` : "";
    return `Error ${error.status}${code}: ${error.message}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Shows an error clearly, a 403 as a permission problem; field violations are listed too. */
export function ErrorBox({ error, fields = true, id }: { error: unknown; fields?: boolean; id?: string }) {
  if (error === null || error === undefined) return null;
  const violations = error instanceof ApiError && fields ? (error.problem?.errors ?? []) : [];
  return (
    <div id={id} className="error-box" role="alert">
      <p>{describeError(error)}</p>
      {violations.length > 0 && (
        <ul>
          {violations.map((v, i) => (
            <li key={i}>
              <code>{v.field}</code>: {v.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
