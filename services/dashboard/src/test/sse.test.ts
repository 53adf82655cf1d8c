import { describe, expect, it } from "vitest";
import { followSSE, SSEParser, type SSEMessage } from "../lib/sse";

function parse(chunks: string[]) {
  const messages: SSEMessage[] = [];
  const comments: string[] = [];
  const p = new SSEParser((m) => messages.push(m), (c) => comments.push(c));
  chunks.forEach((c) => p.push(c));
  return { messages, comments, parser: p };
}

describe("SSEParser", () => {
  it("parses ids, event names, comments and multi-line data", () => {
    const { messages, comments } = parse([
      ": following\n\n",
      "id: 5\nevent: agent.created\ndata: {\"seq\":5,\n",
      "data: \"kind\":\"agent\"}\n\n",
      ": keep-alive\n\n",
      "data: plain\n\n",
    ]);
    expect(comments).toEqual(["following", "keep-alive"]);
    expect(messages).toEqual([
      { id: "5", event: "agent.created", data: '{"seq":5,\n"kind":"agent"}' },
      { id: "5", event: "message", data: "plain" },
    ]);
    expect(JSON.parse(messages[0]!.data)).toEqual({ seq: 5, kind: "agent" });
  });

  it("handles CRLF split across chunks and fields without a space", () => {
    const { messages } = parse(["id:7\r", "\nevent:x\r\ndata:a", "b\r\n\r\n"]);
    expect(messages).toEqual([{ id: "7", event: "x", data: "ab" }]);
  });

  it("does not dispatch an event without data", () => {
    const { messages, parser } = parse(["id: 9\nevent: nothing\n\n"]);
    expect(messages).toEqual([]);
    expect(parser.lastEventId).toBe("9");
  });
});

function streamOf(text: string, error = false): Response {
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(new TextEncoder().encode(text));
      } else if (error) controller.error(new Error("connection reset"));
      else controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

describe("followSSE", () => {
  it("reconnects after an error with Last-Event-ID and the Authorization header", async () => {
    const requests: Headers[] = [];
    const received: string[] = [];
    const controller = new AbortController();
    const responses = [
      () => streamOf("id: 1\nevent: a\ndata: one\n\nid: 2\nevent: a\ndata: two\n\nid: 3\ndata: half", true),
      () => new Response("gateway restarting", { status: 503 }),
      () => streamOf(": following\n\nid: 3\nevent: a\ndata: three\n\n"),
    ];
    await followSSE({
      url: "/api/v1/events",
      headers: () => ({ Authorization: "Bearer t" }),
      initialDelayMs: 1,
      maxDelayMs: 2,
      signal: controller.signal,
      fetchImpl: async (_url, init) => {
        requests.push(new Headers(init?.headers));
        const next = responses.shift();
        if (!next) {
          controller.abort();
          throw new DOMException("aborted", "AbortError");
        }
        return next();
      },
      onMessage: (m) => received.push(`${m.id}:${m.data}`),
    });
    // The half-received event before the reset is dropped, not glued to the next one.
    expect(received).toEqual(["1:one", "2:two", "3:three"]);
    expect(requests[0]?.get("Last-Event-ID")).toBeNull();
    expect(requests[1]?.get("Last-Event-ID")).toBe("2");
    expect(requests[2]?.get("Last-Event-ID")).toBe("2");
    expect(requests[3]?.get("Last-Event-ID")).toBe("3");
    expect(requests.every((h) => h.get("Authorization") === "Bearer t")).toBe(true);
  });

  it("stops on 401 and reports it", async () => {
    let unauthorized = 0;
    await followSSE({
      url: "/api/v1/events",
      initialDelayMs: 1,
      fetchImpl: async () => new Response("", { status: 401 }),
      onUnauthorized: () => unauthorized++,
      onMessage: () => undefined,
    });
    expect(unauthorized).toBe(1);
  });
});
