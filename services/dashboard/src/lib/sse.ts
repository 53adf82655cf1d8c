/**
 * A small server-sent events reader over fetch, because EventSource cannot send an
 * Authorization header. Parses per the HTML spec: `id:`, `event:`, `data:` (several lines
 * joined with "\n"), `retry:`, and comment lines starting with ':'.
 */

export interface SSEMessage {
  /** The last event id seen so far (the spec's "last event ID"), if any. */
  id: string | undefined;
  /** The event type; `message` when the event had no `event:` field. */
  event: string;
  data: string;
}

export class SSEParser {
  private buffer = "";
  private dataLines: string[] = [];
  private eventType = "";
  /** The id of the last event dispatched; persists across events, as the spec says. */
  lastEventId: string | undefined;
  /** The `id:` seen in the event being received, committed when it is dispatched. */
  private idBuffer: string | undefined;
  /** Reconnection delay the server asked for with `retry:`, in ms. */
  retry: number | undefined;

  constructor(
    private readonly onMessage: (message: SSEMessage) => void,
    private readonly onComment?: (text: string) => void,
  ) {}

  push(chunk: string): void {
    this.buffer += chunk;
    // A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
    const re = /\r\n|\n|\r(?!$)/g;
    let start = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(this.buffer)) !== null) {
      this.line(this.buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** Drops a half-received event (the connection ended in its middle). */
  reset(): void {
    this.idBuffer = this.lastEventId;
    this.buffer = "";
    this.dataLines = [];
    this.eventType = "";
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) {
      this.onComment?.(line.slice(1).replace(/^ /, ""));
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.dataLines.push(value);
        break;
      case "event":
        this.eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) this.idBuffer = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  private dispatch(): void {
    this.lastEventId = this.idBuffer;
    if (this.dataLines.length === 0) {
      this.eventType = "";
      return;
    }
    const message: SSEMessage = {
      id: this.lastEventId,
      event: this.eventType || "message",
      data: this.dataLines.join("\n"),
    };
    this.dataLines = [];
    this.eventType = "";
    this.onMessage(message);
  }
}

export type StreamState = "connecting" | "open" | "reconnecting" | "closed";

export interface StreamOptions {
  url: string | (() => string);
  headers?: () => Record<string, string>;
  onMessage: (message: SSEMessage) => void;
  onComment?: (text: string) => void;
  onState?: (state: StreamState, error?: unknown) => void;
  /** Called on a 401: the stream stops. */
  onUnauthorized?: () => void;
  /** Whether to reconnect after the server ended the stream normally. Default true. */
  reconnectOnEnd?: boolean;
  /** Starting Last-Event-ID, e.g. to resume. */
  lastEventId?: string;
  initialDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
  fetchImpl?: typeof fetch;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * Reads the stream until `signal` aborts, reconnecting after errors (and, unless told not to,
 * after the stream ended) with an exponential backoff, sending `Last-Event-ID` so the server
 * resumes after the last event seen.
 */
export async function followSSE(options: StreamOptions): Promise<void> {
  const {
    signal,
    initialDelayMs = 1000,
    maxDelayMs = 30000,
    reconnectOnEnd = true,
    fetchImpl = (input, init) => globalThis.fetch(input, init),
  } = options;
  const parser = new SSEParser(options.onMessage, options.onComment);
  parser.lastEventId = options.lastEventId;
  let delay = initialDelayMs;
  let first = true;

  while (!signal?.aborted) {
    options.onState?.(first ? "connecting" : "reconnecting");
    first = false;
    let endedNormally = false;
    try {
      const headers: Record<string, string> = {
        Accept: "text/event-stream",
        ...(options.headers?.() ?? {}),
      };
      if (parser.lastEventId !== undefined) headers["Last-Event-ID"] = parser.lastEventId;
      const url = typeof options.url === "function" ? options.url() : options.url;
      const response = await fetchImpl(url, { headers, signal, cache: "no-store" });
      if (response.status === 401) {
        options.onUnauthorized?.();
        options.onState?.("closed");
        return;
      }
      if (!response.ok || !response.body) {
        throw new Error(`stream answered ${response.status}`);
      }
      options.onState?.("open");
      delay = initialDelayMs;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
      endedNormally = true;
    } catch (error) {
      if (signal?.aborted) break;
      options.onState?.("reconnecting", error);
    }
  parser.reset();
    if (signal?.aborted) break;
    if (endedNormally && !reconnectOnEnd) break;
    await sleep(parser.retry ?? delay, signal);
    delay = Math.min(delay * 2, maxDelayMs);
  }
  options.onState?.("closed");
}
