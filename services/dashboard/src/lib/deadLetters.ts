import { useEffect, useRef, useState } from "react";
import { api, authHeaders, notifyUnauthorized, unwrap } from "../api/client";
import { followSSE, type StreamState } from "./sse";

const SETTLE_MS = 300;

/** Calls `onArrive` (at most once per `SETTLE_MS`) while dead letters arrive in the queue, for
 * one agent or all, from the gateway's live stream of the queue. */
export function useDeadLetterArrivals(agent: string, onArrive: () => void): StreamState {
  const [state, setState] = useState<StreamState>("connecting");
  const callback = useRef(onArrive);
  callback.current = onArrive;
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const query = agent ? `?agent=${encodeURIComponent(agent)}` : "";
    void followSSE({
      url: `/api/v1/dlq/events${query}`,
      headers: () => authHeaders(),
      signal: controller.signal,
      onUnauthorized: notifyUnauthorized,
      onState: setState,
      onMessage: (m) => {
        if (m.event !== "dead_letter" || timer !== undefined) return;
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
  }, [agent]);
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
