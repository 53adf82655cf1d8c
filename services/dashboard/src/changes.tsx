import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { authHeaders, notifyUnauthorized, type Schemas } from "./api/client";
import { followSSE, type StreamState } from "./lib/sse";

export type Change = Schemas["Change"];
type Listener = (change: Change) => void;

interface ChangesValue {
  state: StreamState;
  subscribe: (listener: Listener) => () => void;
}

const ChangesContext = createContext<ChangesValue | null>(null);

/** One shared `GET /api/v1/events` stream for the whole app; views subscribe to it. */
export function ChangesProvider({ token, children }: { token: string; children: ReactNode }) {
  const [state, setState] = useState<StreamState>("connecting");
  const listeners = useRef(new Set<Listener>());

  useEffect(() => {
    const controller = new AbortController();
    void followSSE({
      url: "/api/v1/events",
      headers: () => authHeaders(token),
      signal: controller.signal,
      onState: (s) => setState(s),
      onUnauthorized: notifyUnauthorized,
      onMessage: (message) => {
        let change: Change;
        try {
          change = JSON.parse(message.data) as Change;
        } catch {
          return;
        }
        for (const l of listeners.current) l(change);
      },
    });
    return () => controller.abort();
  }, [token]);

  const subscribe = useCallback((listener: Listener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);
  const value = useMemo<ChangesValue>(() => ({ state, subscribe }), [state, subscribe]);
  return <ChangesContext.Provider value={value}>{children}</ChangesContext.Provider>;
}

export function useStreamState(): StreamState {
  return useContext(ChangesContext)?.state ?? "closed";
}

export interface ChangeFilter {
  kinds?: readonly string[];
  id?: string | undefined;
}

/**
 * Calls `onChange` (debounced by `delayMs`, with every change seen meanwhile) when a change
 * matching the filter arrives. Outside a ChangesProvider it does nothing.
 */
export function useChanges(
  filter: ChangeFilter,
  onChange: (changes: Change[]) => void,
  delayMs = 250,
): void {
  const ctx = useContext(ChangesContext);
  const callback = useRef(onChange);
  callback.current = onChange;
  const kinds = filter.kinds?.join(",") ?? "";
  const id = filter.id;
  const subscribe = ctx?.subscribe;

  useEffect(() => {
    if (!subscribe) return undefined;
    const wanted = kinds ? new Set(kinds.split(",")) : null;
    let pending: Change[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unsubscribe = subscribe((change) => {
      if (wanted && !wanted.has(change.kind)) return;
      if (id !== undefined && change.id !== id) return;
      pending.push(change);
      if (timer === undefined) {
        timer = setTimeout(() => {
          timer = undefined;
          const batch = pending;
          pending = [];
          callback.current(batch);
        }, delayMs);
      }
    });
    return () => {
      unsubscribe();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [subscribe, kinds, id, delayMs]);
}
