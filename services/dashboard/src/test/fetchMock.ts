import { vi } from "vitest";

export interface Seen {
  url: URL;
  method: string;
  headers: Headers;
  body: string | null;
}

type Handler = (req: Seen) => Response | Promise<Response>;

export function json(body: unknown, status = 200, type = "application/json"): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
}

/** A stream that stays open (like a quiet SSE stream) until the test ends. */
export function openStream(text = ": following\n\n"): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(text));
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

/** Replaces globalThis.fetch; returns the list of requests seen. */
export function mockFetch(handler: Handler): Seen[] {
  const seen: Seen[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    let req: Seen;
    if (input instanceof Request) {
      req = {
        url: new URL(input.url),
        method: input.method,
        headers: input.headers,
        body: input.body ? await input.text() : null,
      };
    } else {
      req = {
        url: new URL(String(input), window.location.origin),
        method: init?.method ?? "GET",
        headers: new Headers(init?.headers),
        body: typeof init?.body === "string" ? init.body : null,
      };
    }
    seen.push(req);
    return handler(req);
  });
  vi.stubGlobal("fetch", fn);
  return seen;
}
