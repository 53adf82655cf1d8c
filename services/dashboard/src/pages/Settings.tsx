import { useEffect, useRef, useState, type FormEvent } from "react";
import { ApiError, api, unwrap, type Schemas } from "../api/client";
import { useAuth, useCan, type Role } from "../auth";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { describeError, ErrorBox } from "../components/ErrorBox";
import { fieldErrorsOf, FormError } from "../components/FieldErrors";
import { formatTime, useLoad } from "../lib/useLoad";
import { PageHead, ColumnHeads } from "../components/PageHead";

type CreatedToken = Schemas["CreatedToken"];
const ROLES: Role[] = ["viewer", "operator", "admin"];
const PLACED: ReadonlySet<string> = new Set(["name", "role"]);

function shown(value: unknown): string {
  if (value === "") return '""';
  if (typeof value === "string") return value;
  return JSON.stringify(value) ?? String(value);
}

function NewTokenBox({ created, onDone }: { created: CreatedToken; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const box = useRef<HTMLElement>(null);
  useEffect(() => box.current?.focus(), []);

  async function copy() {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied("Copied.");
    } catch {
      setCopied("Could not copy: select the token and copy it.");
    }
  }

  return (
    <section className="notice new-token" aria-labelledby="new-token-h" ref={box} tabIndex={-1}>
      <h3 id="new-token-h">New token</h3>
      <p>
        Token <strong>{created.name}</strong> ({created.role}):
      </p>
      <p>
        <code className="token-value">{created.token}</code>
      </p>
      <p>
        <strong>Copy it now: it will not be shown again.</strong>
      </p>
      <div className="actions">
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
        <button type="button" onClick={onDone}>
          Done
        </button>
        <span role="status">{copied}</span>
      </div>
    </section>
  );
}

function CreateTokenForm({ onCreated }: { onCreated: (t: CreatedToken) => void }) {
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const { errors, at: err, invalid } = fieldErrorsOf(error, (path) => `token-${path}`);
  // A taken name (409) is said at the name field.
  if (error instanceof ApiError && error.status === 409 && !errors.name) errors.name = error.message;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await unwrap(api.POST("/api/v1/tokens", { body: { name: name.trim(), role } }));
      setName("");
      onCreated(created);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} noValidate aria-labelledby="create-token-h">
      <h3 id="create-token-h">Create token</h3>
      <FormError error={error} errors={errors} placed={PLACED} what="the token" />
      <div className="field">
        <label htmlFor="token-name">Token name</label>
        <input id="token-name" value={name} onChange={(e) => setName(e.target.value)} required autoComplete="off" {...invalid("name", "token-name-hint")} />
        <p className="hint" id="token-name-hint">
          Letters, digits, '.', '_' and '-', up to 64, e.g. ci.
        </p>
        {err("name")}
      </div>
      <div className="field">
        <label htmlFor="token-role">Role</label>
        <select id="token-role" value={role} onChange={(e) => setRole(e.target.value as Role)} {...invalid("role")}>
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        {err("role")}
      </div>
      <div className="actions">
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create token"}
        </button>
      </div>
    </form>
  );
}

function TokensSection() {
  const tokens = useLoad(() => unwrap(api.GET("/api/v1/tokens")), []);
  const [created, setCreated] = useState<CreatedToken | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<{ ok: boolean; text: string } | null>(null);

  async function revoke(name: string) {
    try {
      await unwrap(api.DELETE("/api/v1/tokens/{name}", { params: { path: { name } } }));
      setOutcome({ ok: true, text: `Token ${name} revoked.` });
    } catch (e) {
      setOutcome({ ok: false, text: `Could not revoke ${name}: ${describeError(e)}` });
    }
    tokens.reload();
  }

  return (
    <section className="card" aria-labelledby="tokens-h">
      <h2 id="tokens-h">API tokens</h2>
      {created && <NewTokenBox created={created} onDone={() => setCreated(null)} />}
      {outcome && (
        <div role="status" className={outcome.ok ? "notice" : "error-box"}>
          <p>{outcome.text}</p>
        </div>
      )}
      <ErrorBox error={tokens.error} />
      {!tokens.data && tokens.loading && <p aria-busy="true">Loading…</p>}
      {tokens.data &&
        (tokens.data.items.length === 0 ? (
          <p>No tokens.</p>
        ) : (
          <div className="table-wrap">
            <table>
              <ColumnHeads names={["Name", "Role", "Created", "Actions"]} />
              <tbody>
                {tokens.data.items.map((t) => (
                  <tr key={t.name}>
                    <td>{t.name}</td>
                    <td>{t.role}</td>
                    <td>{formatTime(t.created_at)}</td>
                    <td className="row-actions">
                      <button type="button" className="danger" aria-label={`Revoke ${t.name}`} onClick={() => setRevoking(t.name)}>
                        Revoke
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
      <CreateTokenForm
        onCreated={(t) => {
          setOutcome(null);
          setCreated(t);
          tokens.reload();
        }}
      />
      {revoking !== null && (
        <ConfirmDialog
          title={`Revoke token ${revoking}?`}
          message="Every request with this token is refused from now on, by every gateway replica."
          typeToConfirm={revoking}
          confirmLabel="Revoke"
          onCancel={() => setRevoking(null)}
          onConfirm={() => {
            const name = revoking;
            setRevoking(null);
            void revoke(name);
          }}
        />
      )}
    </section>
  );
}

export default function Settings() {
  const settings = useLoad(() => unwrap(api.GET("/api/v1/settings")), []);
  const { caller } = useAuth();
  const can = useCan();
  // The section that hands out secrets waits for the role: a viewer never sees it, even briefly.
  const admin = caller !== null && can("admin");
  const entries = settings.data ? Object.entries(settings.data).sort(([a], [b]) => a.localeCompare(b)) : [];

  return (
    <>
      <PageHead title="Settings" onRefresh={settings.reload} busy={settings.loading} />
      <section className="card" aria-labelledby="settings-h">
        <h2 id="settings-h">Gateway settings</h2>
        <p className="muted">As the answering gateway runs (CORTEX_* variables); secrets are shown as ***. Read-only.</p>
        <ErrorBox error={settings.error} />
        {!settings.data && settings.loading && <p aria-busy="true">Loading…</p>}
        {settings.data && (
          <div className="table-wrap">
            <table className="settings-table" aria-labelledby="settings-h">
              <ColumnHeads names={["Setting", "Value"]} />
              <tbody>
                {entries.map(([key, value]) => (
                  <tr key={key}>
                    <th scope="row">
                      <code>{key}</code>
                    </th>
                    <td>
                      <code>{shown(value)}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {admin && <TokensSection />}
    </>
  );
}
