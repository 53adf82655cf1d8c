import type { ReactNode } from "react";
import { ApiError } from "../api/client";
import { ErrorBox } from "./ErrorBox";

export interface FieldErrors {
  /** The gateway's message per field path (`name`, `config.temperature`...). */
  errors: Record<string, string>;
  /** The message to show under the field at `path`, if it has one. */
  at: (path: string) => ReactNode;
  /** aria attributes tying the field at `path` to its message (and to its hint, if any). */
  invalid: (path: string, hint?: string) => { "aria-invalid": boolean; "aria-describedby": string | undefined };
}

/** A form's refusal from the gateway, ready to be shown at each field; `idFor` names the
 * field's element id (the message's is that id + `-error`). */
export function fieldErrorsOf(error: unknown, idFor: (path: string) => string): FieldErrors {
  const errors = error instanceof ApiError ? error.fieldErrors() : {};
  return {
    errors,
    at: (path) =>
      errors[path] ? (
        <p className="field-error" id={`${idFor(path)}-error`}>
          {errors[path]}
        </p>
      ) : null,
    invalid: (path, hint) => ({
      "aria-invalid": Boolean(errors[path]),
      "aria-describedby": [hint ?? "", errors[path] ? `${idFor(path)}-error` : ""].filter(Boolean).join(" ") || undefined,
    }),
  };
}

/** The form's summary of a refusal: field problems are said at their fields, those of fields
 * the form does not show (`placed` lists the shown ones) are listed here. */
export function FormError({
  error,
  errors,
  placed,
  what,
}: {
  error: unknown;
  errors: Record<string, string>;
  placed: ReadonlySet<string>;
  what: string;
}) {
  if (error === null || error === undefined) return null;
  if (Object.keys(errors).length === 0) return <ErrorBox error={error} />;
  const unplaced = Object.entries(errors).filter(([path]) => !placed.has(path));
  return (
    <div className="error-box" role="alert">
      <p>The gateway refused {what}: see the fields below.</p>
      {unplaced.length > 0 && (
        <ul>
          {unplaced.map(([path, message]) => (
            <li key={path}>
              <code>{path}</code>: {message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
