import { useEffect, useId, useRef, useState } from "react";

interface Props {
  title: string;
  message: string;
  /** When given, the user must type this (the agent's name) before confirming. */
  typeToConfirm?: string;
  confirmLabel?: string;
  onConfirm: () => void;
  onCancel: () => void;
}

/** A modal confirmation for destructive actions. Escape cancels. */
export function ConfirmDialog({ title, message, typeToConfirm, confirmLabel = "Confirm", onConfirm, onCancel }: Props) {
  const titleId = useId();
  const inputId = useId();
  const [typed, setTyped] = useState("");
  const first = useRef<HTMLInputElement & HTMLButtonElement>(null);
  const previous = useRef<Element | null>(null);

  useEffect(() => {
    previous.current = document.activeElement;
    first.current?.focus();
    return () => {
      if (previous.current instanceof HTMLElement) previous.current.focus();
    };
  }, []);

  const ok = typeToConfirm === undefined || typed === typeToConfirm;
  return (
    <div className="dialog-backdrop">
      <div
        className="dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={titleId}
        onKeyDown={(e) => {
          if (e.key === "Escape") onCancel();
        }}
      >
        <h2 id={titleId}>{title}</h2>
        <p>{message}</p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (ok) onConfirm();
          }}
        >
          {typeToConfirm !== undefined && (
            <div className="field">
              <label htmlFor={inputId}>
                Type <strong>{typeToConfirm}</strong> to confirm
              </label>
              <input
                id={inputId}
                ref={first}
                autoComplete="off"
                value={typed}
                onChange={(e) => setTyped(e.target.value)}
              />
            </div>
          )}
          <div className="actions">
            <button type="submit" className="danger" disabled={!ok}>
              {confirmLabel}
            </button>
            <button type="button" onClick={onCancel} ref={typeToConfirm === undefined ? first : undefined}>
              Cancel
            </button>
          </div>
        </form>
      </div>
    </div>
  );
}
