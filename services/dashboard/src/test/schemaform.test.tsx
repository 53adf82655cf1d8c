import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CreateAgentForm } from "../pages/Agents";
import { json, mockFetch } from "./fetchMock";

afterEach(() => vi.unstubAllGlobals());

const template = {
  name: "crawler",
  version: "2",
  registered_at: "2026-11-30T00:00:00Z",
  default_replicas: 2,
  default_config: { depth: 3 },
  config_schema: {
    type: "object",
    required: ["url"],
    properties: {
      url: { type: "string", description: "Where to start" },
      depth: { type: "integer", minimum: 0 },
      follow: { type: "boolean" },
      mode: { enum: ["fast", "thorough"] },
      limits: { type: "object", properties: { pages: { type: "number" } } },
      extra: { type: "array" },
      token: { type: "string", writeOnly: true },
    },
  },
};

describe("create agent form", () => {
  it("generates fields from the template's config schema and shows API errors at their fields", async () => {
    const seen = mockFetch((req) => {
      if (req.url.pathname === "/api/v1/templates")
        return json([{ name: "crawler", latest: "2", versions: ["1", "2"], description: "crawls", runtime: "host" }]);
      if (req.url.pathname === "/api/v1/templates/crawler") return json({ name: "crawler", versions: [template] });
      if (req.url.pathname === "/api/v1/pools") return json([{ name: "gold", description: "", agents: 0, created_at: "2026-11-30T00:00:00Z" }]);
      if (req.url.pathname === "/api/v1/agents" && req.method === "POST")
        return json(
          {
            type: "https://codevald.dev/problems/invalid",
            title: "Unprocessable Content",
            status: 422,
            detail: "2 problems",
            code: "invalid",
            errors: [
              { field: "$.config.depth", message: "must be at most 10" },
              { field: "$.name", message: "must be a DNS label" },
              { field: "$.labels.Bad Key", message: "letters, digits, '.', '_' and '-' only" },
              { field: "$.dry_run", message: "something else" },
            ],
          },
          422,
          "application/problem+json",
        );
      return json({}, 404);
    });
    const user = userEvent.setup();
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
        <CreateAgentForm onCreated={() => undefined} onCancel={() => undefined} />
      </MemoryRouter>,
    );
    await user.selectOptions(await screen.findByLabelText("Template"), "crawler");

    const depth = await screen.findByLabelText("depth");
    expect(depth).toHaveValue(3);
    expect(screen.getByLabelText("Replicas")).toHaveValue(2);
    expect(screen.getByLabelText("url *")).toHaveAccessibleDescription("Where to start");
    expect(screen.getByLabelText("follow")).toHaveAttribute("type", "checkbox");
    expect(within(screen.getByLabelText("mode")).getByRole("option", { name: "thorough" })).toBeInTheDocument();
    expect(screen.getByRole("group", { name: "limits" })).toBeInTheDocument();
    expect(screen.getByLabelText("extra (JSON)").tagName).toBe("TEXTAREA");
    // A secret field is typed unseen.
    expect(screen.getByLabelText("token")).toHaveAttribute("type", "password");
    expect(screen.getByLabelText("url *")).toHaveAttribute("type", "text");

    // A label that is not key=value is refused here, at its field, and nothing is sent.
    await user.type(screen.getByLabelText("Labels"), "team=qa, oops");
    await user.click(screen.getByRole("button", { name: "Create" }));
    expect(await screen.findByText('"oops" is not key=value')).toBeInTheDocument();
    expect(seen.some((r) => r.method === "POST")).toBe(false);
    await user.clear(screen.getByLabelText("Labels"));
    await user.type(screen.getByLabelText("Labels"), "team=qa, Bad Key=x");
    await user.selectOptions(await screen.findByLabelText("Pool"), "gold");

    await user.type(screen.getByLabelText("Name"), "Bad_Name");
    await user.type(screen.getByLabelText("url *"), "http://x");
    await user.clear(depth);
    await user.type(depth, "42");
    await user.click(screen.getByRole("button", { name: "Create" }));

    expect(await screen.findByText("must be at most 10")).toBeInTheDocument();
    expect(screen.getByLabelText("depth")).toHaveAccessibleDescription("must be at most 10");
    expect(screen.getByLabelText("depth")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByLabelText("Name")).toHaveAccessibleDescription(expect.stringContaining("must be a DNS label"));
    // An error no field shows is listed with its location.
    expect(screen.getByRole("alert")).toHaveTextContent("dry_run: something else");
    // A refused label is said at the labels field, naming its key.
    expect(screen.getByLabelText("Labels")).toHaveAccessibleDescription(expect.stringContaining("Bad Key: letters, digits"));
    expect(screen.getByLabelText("Labels")).toHaveAttribute("aria-invalid", "true");

    const post = seen.find((r) => r.method === "POST");
    expect(JSON.parse(post?.body ?? "{}")).toMatchObject({
      name: "Bad_Name",
      template: "crawler",
      replicas: 2,
      config: { depth: 42, url: "http://x" },
      labels: { team: "qa", "Bad Key": "x" },
      pool: "gold",
    });
    expect(post?.headers.get("Idempotency-Key")).toBeTruthy();
  });
});
