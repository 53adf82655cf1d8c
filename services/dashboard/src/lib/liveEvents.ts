import { useEffect, useRef, useState } from "react";
import { api, authHeaders, notifyUnauthorized, unwrap } from "../api/client";
import { followSSE, type StreamState } from "./sse";

const SETTLE_MS = 300;

/** Calls `onEvent` (at most once per `SETTLE_MS`) while events named `event` arrive on the
 * gateway's server-sent event stream at `url` (reconnecting, and resuming, as it must). */
export function useStreamEvents(url: string, event: string, onEvent: () => void): StreamState {
  const [state, setState] = useState<StreamState>("connecting");
  const callback = useRef(onEvent);
  callback.current = onEvent;
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    void followSSE({
      url,
      headers: () => authHeaders(),
      signal: controller.signal,
      onUnauthorized: notifyUnauthorized,
      onState: setState,
      onMessage: (m) => {
        if (m.event !== event || timer !== undefined) return;
        timer = setTimeout(() => {
          timer = undefined;
          callback.current();
        }, SETTLE_MS);
      },
    });
    return () => {
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [url, event]);
  return state;
}

/** Names of the agents with these ids, read once each; an id whose agent is gone stays an id. */
export function useAgentNames(ids: string[]): Map<string, string> {
  const [names, setNames] = useState<Map<string, string>>(new Map());
  const asked = useRef(new Set<string>());
  const key = [...new Set(ids)].sort().join(",");
  useEffect(() => {
    const wanted = key ? key.split(",").filter((id) => !asked.current.has(id)) : [];
    for (const id of wanted) {
      asked.current.add(id);
      unwrap(api.GET("/api/v1/agents/{ref}", { params: { path: { ref: id } } }))
        .then((agent) => setNames((old) => new Map(old).set(id, agent.name)))
        .catch(() => undefined);
    }
  }, [key]);
  return names;
}
