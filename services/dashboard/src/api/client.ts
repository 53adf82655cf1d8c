import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./gateway";

/** Shapes of the gateway's API, generated from contracts/openapi/gateway.json. */
export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type AgentStatus = Schemas["AgentView"]["status"];
export type ExecutionStatus = Schemas["ExecutionView"]["status"];
export type StepStatus = Schemas["StepView"]["status"];
export type Health = Schemas["HostView"]["health"];

export const TOKEN_KEY = "cortex.token";

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called on every 401 answer: the token is gone or unknown. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function notifyUnauthorized(): void {
  for (const l of unauthorizedListeners) l();
}

export function authHeaders(token: string | null = getToken()): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

const authMiddleware: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${token}`);
    }
    return request;
  },
  onResponse({ response }) {
    if (response.status === 401) notifyUnauthorized();
    return response;
  },
};

function origin(): string {
  return typeof window !== "undefined" ? window.location.origin : "http://localhost";
}

/** The typed client: every path, parameter and body comes from the generated `paths`. */
export const api = createClient<paths>({
  baseUrl: origin(),
  // Looked up on each call so that tests can replace globalThis.fetch.
  fetch: (input: Request) => globalThis.fetch(input),
});
api.use(authMiddleware);

/** An answer that is not 2xx, with the RFC 9457 problem document when the gateway sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  constructor(status: number, problem: Problem | null, fallback?: string) {
    super(problem ? problem.detail || problem.title : (fallback ?? `HTTP ${status}`));
    this.status = status;
    this.problem = problem;
  }
  /** A problem the form finds itself, before asking the gateway: shown as the gateway's are. */
  static local(field: string, message: string): ApiError {
    return new ApiError(422, {
      type: "about:blank",
      title: "Unprocessable Content",
      status: 422,
      code: "invalid",
      detail: `$.${field}: ${message}`,
      errors: [{ field: `$.${field}`, message }],
    });
  }
  /** Field violations keyed by normalised path (`$.config.x` and `body.config.x` → `config.x`). */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const v of this.problem?.errors ?? []) {
      const key = normaliseField(v.field);
      out[key] = out[key] ? `${out[key]}; ${v.message}` : v.message;
    }
    return out;
  }
}

export function normaliseField(field: string): string {
  return field
    .replace(/^\$\.?/, "")
    .replace(/^(body|query|path)\./, "")
    .replace(/\[(\d+)\]/g, ".$1");
}

export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.status === "number" && typeof v.title === "string" && typeof v.code === "string";
}

/**
 * Turns an openapi-fetch answer into its data, or throws an ApiError.
 * A 204 gives `undefined`, as its type says.
 */
export async function unwrap<D>(
  pending: Promise<{ data?: D; error?: unknown; response: Response }>,
): Promise<D> {
  const { data, error, response } = await pending;
  if (!response.ok) {
    const problem = isProblem(error) ? error : null;
    const fallback =
      typeof error === "object" && error !== null && "detail" in error
        ? String((error as { detail: unknown }).detail)
        : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, problem, fallback);
  }
  return data as D;
}

/** A fresh Idempotency-Key for one change. */
export function idempotencyKey(): string {
  if (typeof crypto !== "undefined" && "randomUUID" in crypto) return crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}
