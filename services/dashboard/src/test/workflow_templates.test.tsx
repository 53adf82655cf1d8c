import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TOKEN_KEY } from "../api/client";
import { App } from "../App";
import { parseTemplate } from "../lib/notation";
import { json, mockFetch, openStream, type Seen } from "./fetchMock";

const FANOUT = {
  name: "fanout",
  version: "2",
  description: "asks two agents",
  steps: [{ id: "ask", type: "send", agent: "greeter", payload: { text: "hi" } }],
};

function gateway(registered: unknown[]) {
  return (req: Seen): Response => {
    const path = req.url.pathname;
    if (path === "/api/v1/whoami") return json({ name: "root", role: "admin" });
    if (path === "/api/v1/events") return openStream();
    if (path === "/api/v1/workflow-templates" && req.method === "GET")
      return json([{ name: "fanout", latest: "2", description: FANOUT.description, versions: ["1", "2"] }]);
    if (path === "/api/v1/workflow-templates/fanout") return json({ name: "fanout", latest: "2", versions: [FANOUT] });
    if (path === "/api/v1/workflow-templates" && req.method === "POST") {
      const body = JSON.parse(req.body ?? "{}") as { name?: string; steps?: unknown[] };
      if (!Array.isArray(body.steps))
        return json(
          {
            title: "Invalid",
            status: 422,
            code: "invalid",
            detail: "the template breaks a rule",
            errors: [{ field: "$.steps", message: "expected `array`, got `null`" }],
          },
          422,
          "application/problem+json",
        );
      registered.push(body);
      return json({ name: body.name, version: "1" }, 201);
    }
    if (path === "/api/v1/workflows" || path === "/api/v1/executions") return json({ items: [] });
    return json({ detail: "not mocked" }, 404);
  };
}

afterEach(() => vi.unstubAllGlobals());

function open() {
  render(
    <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/workflows"]}>
      <App />
    </MemoryRouter>,
  );
}

describe("workflow templates", () => {
  it("reads YAML and JSON alike and names the line of a syntax error", () => {
    const yaml = "name: fanout\nversion: '2'\nsteps:\n  - id: ask\n    type: send\n";
    const expected = { name: "fanout", version: "2", steps: [{ id: "ask", type: "send" }] };
    expect(parseTemplate(yaml)).toEqual(expected);
    expect(parseTemplate(JSON.stringify(expected))).toEqual(expected);
    expect(() => parseTemplate("name: fanout\nsteps: [\n  - id: a\n")).toThrow(/line \d+, column \d+/);
    expect(() => parseTemplate("name: a\nname: b\n")).toThrow(/line 2/);
  });

  it("shows a template as YAML or JSON and registers one written in YAML", async () => {
    sessionStorage.setItem(TOKEN_KEY, "admin-token");
    const registered: unknown[] = [];
    mockFetch(gateway(registered));
    const user = userEvent.setup();
    open();
    await user.click(await screen.findByRole("button", { name: "View fanout" }));
    const yamlView = await screen.findByLabelText("fanout as YAML");
    expect(yamlView).toHaveTextContent("name: fanout");
    expect(yamlView).toHaveTextContent("- id: ask");
    await user.click(screen.getByRole("button", { name: "JSON" }));
    const jsonView = await screen.findByLabelText("fanout as JSON");
    expect(JSON.parse(jsonView.textContent ?? "")).toEqual(FANOUT);

    const form = screen.getByLabelText("Workflow template (YAML or JSON)").closest("form") as HTMLFormElement;
    await user.click(screen.getByText("Register a workflow template"));
    const text = within(form).getByLabelText("Workflow template (YAML or JSON)");
    // A syntax error is named by its line, and nothing is sent.
    await user.click(text);
    await user.paste("name: broken\nsteps: [");
    await user.click(within(form).getByRole("button", { name: "Register" }));
    expect(await within(form).findByText(/Not valid JSON or YAML at line/)).toBeInTheDocument();
    expect(registered).toHaveLength(0);

    // The gateway's field error is shown with its location.
    await user.clear(text);
    await user.paste("name: nosteps");
    await user.click(within(form).getByRole("button", { name: "Register" }));
    expect(await within(form).findByText(/expected `array`, got `null`/)).toBeInTheDocument();
    expect(within(form).getByText(/\$\.steps/)).toBeInTheDocument();

    await user.clear(text);
    await user.paste("name: hello\nversion: '1'\nsteps:\n  - id: one\n    type: noop\n");
    await user.click(within(form).getByRole("button", { name: "Register" }));
    await waitFor(() => expect(registered).toEqual([{ name: "hello", version: "1", steps: [{ id: "one", type: "noop" }] }]));
    expect(await within(form).findByText("Registered hello version 1.")).toBeInTheDocument();
  });
});
