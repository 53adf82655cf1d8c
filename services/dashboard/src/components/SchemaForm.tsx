import { useEffect, useState } from "react";

/** The subset of JSON Schema the form understands; the rest falls back to a JSON textarea. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  /** A secret config field: sealed when stored, shown as `***`. */
  writeOnly?: boolean;
}

export function asSchema(value: unknown): JsonSchema {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as JsonSchema) : {};
}

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== "null");
  return schema.type;
}

/** Default value for a schema: its `default`, or for objects each property's default. */
export function defaultsFor(schema: JsonSchema): unknown {
  if (schema.default !== undefined) return schema.default;
  if (typeOf(schema) === "object" && schema.properties) {
    const out: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(schema.properties)) {
      const d = defaultsFor(s);
      if (d !== undefined) out[k] = d;
    }
    return out;
  }
  return undefined;
}

export function fieldId(path: string): string {
  return `field-${path.replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

interface FieldProps {
  schema: JsonSchema;
  /** Dotted path of this value, e.g. `config.retries`; used for ids and error lookup. */
  path: string;
  label: string;
  value: unknown;
  onChange: (value: unknown) => void;
  errors: Record<string, string>;
  required?: boolean;
}

function FieldError({ path, errors }: { path: string; errors: Record<string, string> }) {
  const message = errors[path];
  if (!message) return null;
  return (
    <p className="field-error" id={`${fieldId(path)}-error`}>
      {message}
    </p>
  );
}

function describedBy(path: string, errors: Record<string, string>, schema: JsonSchema): string | undefined {
  const ids = [];
  if (schema.description) ids.push(`${fieldId(path)}-hint`);
  if (errors[path]) ids.push(`${fieldId(path)}-error`);
  return ids.length ? ids.join(" ") : undefined;
}

function Hint({ path, schema }: { path: string; schema: JsonSchema }) {
  return schema.description ? (
    <p className="hint" id={`${fieldId(path)}-hint`}>
      {schema.description}
    </p>
  ) : null;
}

function JsonField({ schema, path, label, value, onChange, errors, required }: FieldProps) {
  const [text, setText] = useState(() => (value === undefined ? "" : JSON.stringify(value, null, 2)));
  const [parseError, setParseError] = useState<string | null>(null);
  const id = fieldId(path);
  const external = value === undefined ? "" : JSON.stringify(value);
  useEffect(() => {
    // The value was changed from outside (e.g. defaults loaded): show it.
    setText((current) => {
      try {
        if (current.trim() !== "" && JSON.stringify(JSON.parse(current)) === external) return current;
      } catch {
        return current;
      }
      return value === undefined ? "" : JSON.stringify(value, null, 2);
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [external]);
  return (
    <div className="field">
      <label htmlFor={id}>
        {label} (JSON){required && " *"}
      </label>
      <textarea
        id={id}
        rows={4}
        value={text}
        aria-invalid={Boolean(errors[path] || parseError)}
        aria-describedby={describedBy(path, errors, schema)}
        onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim() === "") {
            setParseError(null);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(e.target.value));
            setParseError(null);
          } catch {
            setParseError("Not valid JSON yet");
          }
        }}
      />
      <Hint path={path} schema={schema} />
      {parseError && <p className="field-error">{parseError}</p>}
      <FieldError path={path} errors={errors} />
    </div>
  );
}

export function SchemaField(props: FieldProps) {
  const { schema, path, label, value, onChange, errors, required } = props;
  const id = fieldId(path);
  const type = typeOf(schema);
  const common = {
    id,
    "aria-invalid": Boolean(errors[path]),
    "aria-describedby": describedBy(path, errors, schema),
    required,
  };
  const labelEl = (
    <label htmlFor={id}>
      {label}
      {required && " *"}
    </label>
  );

  if (schema.enum) {
    const options = schema.enum;
    const index = options.findIndex((o) => JSON.stringify(o) === JSON.stringify(value));
    return (
      <div className="field">
        {labelEl}
        <select
          {...common}
          value={index === -1 ? "" : String(index)}
          onChange={(e) => onChange(e.target.value === "" ? undefined : options[Number(e.target.value)])}
        >
          <option value="">(not set)</option>
          {options.map((o, i) => (
            <option key={i} value={String(i)}>
              {typeof o === "string" ? o : JSON.stringify(o)}
            </option>
          ))}
        </select>
        <Hint path={path} schema={schema} />
        <FieldError path={path} errors={errors} />
      </div>
    );
  }
  switch (type) {
    case "string":
      return (
        <div className="field">
          {labelEl}
          <input
            {...common}
            // A secret field (`writeOnly`) is typed unseen and never shown back (the API sends `***`).
            type={schema.writeOnly ? "password" : "text"}
            autoComplete={schema.writeOnly ? "new-password" : undefined}
            value={typeof value === "string" ? value : ""}
            onChange={(e) => onChange(e.target.value === "" && !required ? undefined : e.target.value)}
          />
          <Hint path={path} schema={schema} />
          <FieldError path={path} errors={errors} />
        </div>
      );
    case "number":
    case "integer":
      return (
        <div className="field">
          {labelEl}
          <input
            {...common}
            type="number"
            step={type === "integer" ? 1 : "any"}
            min={schema.minimum}
            max={schema.maximum}
            value={typeof value === "number" ? String(value) : ""}
            onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
          />
          <Hint path={path} schema={schema} />
          <FieldError path={path} errors={errors} />
        </div>
      );
    case "boolean":
      return (
        <div className="field field-check">
          <input {...common} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />
          {labelEl}
          <Hint path={path} schema={schema} />
          <FieldError path={path} errors={errors} />
        </div>
      );
    case "object":
      if (schema.properties) {
        const obj = value !== null && typeof value === "object" ? (value as Record<string, unknown>) : {};
        return (
          <fieldset className="schema-object">
            <legend>{label}</legend>
            <Hint path={path} schema={schema} />
            <FieldError path={path} errors={errors} />
            {Object.entries(schema.properties).map(([key, sub]) => (
              <SchemaField
                key={key}
                schema={asSchema(sub)}
                path={`${path}.${key}`}
                label={sub.title ?? key}
                value={obj[key]}
                required={schema.required?.includes(key)}
                errors={errors}
                onChange={(v) => {
                  const next = { ...obj };
                  if (v === undefined) delete next[key];
                  else next[key] = v;
                  onChange(next);
                }}
              />
            ))}
          </fieldset>
        );
      }
      return <JsonField {...props} />;
    default:
      return <JsonField {...props} />;
  }
}

/** Errors whose path is not under `prefix`, or not shown by any field of the form. */
export function errorsOutside(errors: Record<string, string>, shown: (path: string) => boolean): [string, string][] {
  return Object.entries(errors).filter(([path]) => !shown(path));
}

/** All paths the form for `schema` at `path` renders, so unplaced errors can be listed. */
export function schemaPaths(schema: JsonSchema, path: string, out: Set<string> = new Set()): Set<string> {
  out.add(path);
  if (typeOf(schema) === "object" && schema.properties && !schema.enum) {
    for (const [k, s] of Object.entries(schema.properties)) schemaPaths(asSchema(s), `${path}.${k}`, out);
  }
  return out;
}
