import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TOKEN_KEY } from "../api/client";
import { App } from "../App";
import { json, mockFetch, openStream, type Seen } from "./fetchMock";

const CALLERS: Record<string, { name: string; role: string }> = {
  "Bearer admin-token": { name: "root", role: "admin" },
  "Bearer viewer-token": { name: "watcher", role: "viewer" },
};

const SETTINGS = { http_port: 8080, admin_token: "***", log_publish: true, nats_url: "nats://u:***@nats:4222" };

/** A gateway with a tokens file: `ci` is taken. */
function gateway() {
  const tokens = [{ name: "ci", role: "operator", created_at: "2026-01-02T03:04:05Z" }];
  return (req: Seen): Response => {
    const caller = CALLERS[req.headers.get("Authorization") ?? ""];
    if (!caller) return json({ title: "Unauthorized", status: 401, code: "unauthorized" }, 401, "application/problem+json");
    const path = req.url.pathname;
    if (path === "/api/v1/whoami") return json(caller);
    if (path === "/api/v1/events") return openStream();
    if (path === "/api/v1/settings") return json(SETTINGS);
    if (path === "/api/v1/tokens" && req.method === "GET") return json({ items: tokens });
    if (path === "/api/v1/tokens" && req.method === "POST") {
      const body = JSON.parse(req.body ?? "{}") as { name: string; role: string };
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(body.name))
        return json(
          {
            title: "Invalid",
            status: 422,
            code: "invalid",
            detail: "the body breaks a rule",
            errors: [{ field: "$.name", message: "letters, digits, '.', '_' and '-' only" }],
          },
          422,
          "application/problem+json",
        );
      const created = { name: body.name, role: body.role, created_at: "2026-01-03T00:00:00Z" };
      tokens.push(created);
      return json({ ...created, token: "cx_secret_value_123" }, 201);
    }
    const revoke = /^\/api\/v1\/tokens\/(.+)$/.exec(path);
    if (revoke && req.method === "DELETE") {
      const i = tokens.findIndex((t) => t.name === decodeURIComponent(revoke[1] ?? ""));
      tokens.splice(i, 1);
      return new Response(null, { status: 204 });
    }
    return json({ detail: "not mocked" }, 404);
  };
}

afterEach(() => vi.unstubAllGlobals());

function open() {
  render(
    <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/settings"]}>
      <App />
    </MemoryRouter>,
  );
}

describe("settings view", () => {
  it("lets an admin create a token and shows it once", async () => {
    sessionStorage.setItem(TOKEN_KEY, "admin-token");
    const seen = mockFetch(gateway());
    const user = userEvent.setup();
    open();
    expect(await screen.findByRole("heading", { level: 1, name: "Settings" })).toBeInTheDocument();
    const table = await screen.findByRole("table", { name: "Gateway settings" });
    expect(within(table).getByRole("rowheader", { name: "admin_token" })).toBeInTheDocument();
    expect(table).toHaveTextContent("***");
    expect(table).toHaveTextContent("8080");

    const section = await screen.findByRole("region", { name: "API tokens" });
    expect(await within(section).findByRole("cell", { name: "ci" })).toBeInTheDocument();

    // A field error from the problem document is shown at the field.
    await user.type(within(section).getByLabelText("Token name"), "bad name");
    await user.click(within(section).getByRole("button", { name: "Create token" }));
    expect(await within(section).findByText("letters, digits, '.', '_' and '-' only")).toBeInTheDocument();
    expect(within(section).getByLabelText("Token name")).toHaveAttribute("aria-invalid", "true");

    await user.clear(within(section).getByLabelText("Token name"));
    await user.type(within(section).getByLabelText("Token name"), "deploy-bot");
    await user.selectOptions(within(section).getByLabelText("Role"), "operator");
    await user.click(within(section).getByRole("button", { name: "Create token" }));

    const fresh = await screen.findByRole("region", { name: "New token" });
    expect(fresh).toHaveTextContent("cx_secret_value_123");
    expect(fresh).toHaveTextContent(/will not be shown again/);
    expect(within(fresh).getByRole("button", { name: "Copy" })).toBeInTheDocument();
    const post = seen.find((r) => r.method === "POST" && r.url.pathname === "/api/v1/tokens" && r.body?.includes("deploy-bot"));
    expect(JSON.parse(post?.body ?? "{}")).toEqual({ name: "deploy-bot", role: "operator" });
    expect(await within(section).findByRole("cell", { name: "deploy-bot" })).toBeInTheDocument();

    // Once: gone when dismissed, and the list never shows it.
    await user.click(within(fresh).getByRole("button", { name: "Done" }));
    expect(screen.queryByRole("region", { name: "New token" })).toBeNull();
    expect(screen.queryByText("cx_secret_value_123")).toBeNull();
  });

  it("revokes a token after the admin types its name", async () => {
    sessionStorage.setItem(TOKEN_KEY, "admin-token");
    const seen = mockFetch(gateway());
    const user = userEvent.setup();
    open();
    await user.click(await screen.findByRole("button", { name: "Revoke ci" }));
    const dialog = screen.getByRole("dialog", { name: "Revoke token ci?" });
    const confirm = within(dialog).getByRole("button", { name: "Revoke" });
    expect(confirm).toBeDisabled();
    await user.type(within(dialog).getByLabelText(/to confirm/), "ci");
    await user.click(confirm);
    await waitFor(() => expect(seen.some((r) => r.method === "DELETE" && r.url.pathname === "/api/v1/tokens/ci")).toBe(true));
    expect(await screen.findByText("Token ci revoked.")).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole("button", { name: "Revoke ci" })).toBeNull());
  });

  it("shows a viewer the settings but no token section", async () => {
    sessionStorage.setItem(TOKEN_KEY, "viewer-token");
    const seen = mockFetch(gateway());
    open();
    expect(await screen.findByRole("table", { name: "Gateway settings" })).toBeInTheDocument();
    expect(await screen.findByText("watcher (viewer)")).toBeInTheDocument();
    expect(screen.queryByRole("region", { name: "API tokens" })).toBeNull();
    expect(screen.queryByLabelText("Token name")).toBeNull();
    expect(seen.some((r) => r.url.pathname === "/api/v1/tokens")).toBe(false);
  });
});
