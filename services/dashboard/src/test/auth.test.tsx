import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TOKEN_KEY } from "../api/client";
import { App } from "../App";
import { json, mockFetch, openStream, type Seen } from "./fetchMock";

const problem401 = {
  type: "https://codevald.dev/problems/unauthorized",
  title: "Unauthorized",
  status: 401,
  detail: "no or unknown token",
  code: "unauthorized",
};

const TOKENS: Record<string, { name: string; role: string }> = {
  "Bearer good-token": { name: "ops", role: "operator" },
  "Bearer viewer-token": { name: "watcher", role: "viewer" },
};

/** A tiny gateway: knows two tokens; everything else is 401. */
function gateway(req: Seen): Response {
  const caller = TOKENS[req.headers.get("Authorization") ?? ""];
  if (!caller) return json(problem401, 401, "application/problem+json");
  const path = req.url.pathname;
  if (path === "/api/v1/whoami") return json(caller);
  if (path === "/api/v1/events") return openStream();
  if (path === "/api/v1/agents") return json({ items: [], total: 0, next: null });
  if (path === "/api/v1/status")
    return json({ nats: { connected: true }, services: [], stores: [], time: new Date().toISOString(), version: "0.1.0" });
  if (path === "/api/v1/hosts") return json([]);
  if (path === "/api/v1/dlq") return json({ items: [], total: 0, next: null });
  if (path === "/api/v1/executions") return json({ items: [], next: null });
  return json({ detail: "not mocked" }, 404);
}

afterEach(() => vi.unstubAllGlobals());

describe("sign-in", () => {
  it("checks the token, stores it in sessionStorage and opens the overview", async () => {
    const seen = mockFetch(gateway);
    const user = userEvent.setup();
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/"]}>
        <App />
      </MemoryRouter>,
    );
    expect(await screen.findByRole("heading", { level: 1, name: /sign in/i })).toBeInTheDocument();

    await user.type(screen.getByLabelText("API token"), "wrong");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("did not accept");
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();

    await user.clear(screen.getByLabelText("API token"));
    await user.type(screen.getByLabelText("API token"), "good-token");
    await user.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("heading", { level: 1, name: "Overview" })).toBeInTheDocument();
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe("good-token");
    expect(await screen.findByText("No alerts.")).toBeInTheDocument();
    expect(screen.getByRole("navigation", { name: "Main" })).toBeInTheDocument();
    expect(screen.getByText("ops (operator)")).toBeInTheDocument();
    expect(seen.some((r) => r.url.pathname === "/api/v1/events")).toBe(true);
  });

  it("goes back to sign-in when the gateway answers 401", async () => {
    sessionStorage.setItem(TOKEN_KEY, "revoked-token");
    mockFetch(gateway);
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/agents"]}>
        <App />
      </MemoryRouter>,
    );
    expect(await screen.findByLabelText("API token")).toBeInTheDocument();
    await waitFor(() => expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull());
    expect(screen.getByRole("status")).toHaveTextContent("401");
  });

  it("signs out from the navigation bar", async () => {
    sessionStorage.setItem(TOKEN_KEY, "good-token");
    mockFetch(gateway);
    const user = userEvent.setup();
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/"]}>
        <App />
      </MemoryRouter>,
    );
    await user.click(await screen.findByRole("button", { name: "Sign out" }));
    expect(await screen.findByLabelText("API token")).toBeInTheDocument();
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it("hides the actions the token's role cannot do", async () => {
    sessionStorage.setItem(TOKEN_KEY, "viewer-token");
    mockFetch(gateway);
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/agents"]}>
        <App />
      </MemoryRouter>,
    );
    expect(await screen.findByRole("heading", { level: 1, name: "Agents" })).toBeInTheDocument();
    expect(await screen.findByText("watcher (viewer)")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Create agent" })).toBeNull();
  });

  it("shows the create button to an operator", async () => {
    sessionStorage.setItem(TOKEN_KEY, "good-token");
    mockFetch(gateway);
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/agents"]}>
        <App />
      </MemoryRouter>,
    );
    expect(await screen.findByRole("button", { name: "Create agent" })).toBeInTheDocument();
    expect(await screen.findByText("Showing 0 of 0 agents")).toBeInTheDocument();
  });
});
