import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TOKEN_KEY } from "../api/client";
import { App } from "../App";
import { LineChart, linePath } from "../components/LineChart";
import { json, mockFetch, openStream, type Seen } from "./fetchMock";

afterEach(() => vi.unstubAllGlobals());

describe("LineChart", () => {
  const times = [100, 110, 120, 130];
  const ms = (v: number) => `${(v * 1000).toFixed(0)} ms`;

  it("lists each line with its latest value, and a gap for null", () => {
    render(
      <LineChart
        title="Delivery latency"
        times={times}
        format={ms}
        lines={[
          { label: "p50", values: [0.01, 0.012, null, 0.02] },
          { label: "p99", values: [0.1, 0.2, 0.3, null] },
        ]}
      />,
    );
    const figure = screen.getByRole("figure", { name: "Delivery latency" });
    const legend = within(figure).getByRole("list", { name: "Delivery latency legend" });
    const items = within(legend).getAllByRole("listitem");
    expect(items[0]).toHaveTextContent("p50: 20 ms");
    expect(items[1]).toHaveTextContent("p99: —");
    expect(within(figure).getByRole("img")).toHaveAccessibleName("Delivery latency, latest: p50 20 ms; p99 no value");
    // Axis ends: 0 to the highest value.
    expect(figure).toHaveTextContent("300 ms");
    expect(figure).toHaveTextContent("0 ms");

    // The null in the middle of p50 splits its line in two; the values are never bridged.
    const p50 = figure.querySelector('[data-line="p50"] path');
    expect(p50?.getAttribute("d")?.match(/M/g)).toHaveLength(1);
    expect(figure.querySelectorAll('[data-line="p50"] circle')).toHaveLength(1);
  });

  it("starts a new subpath after each gap", () => {
    const { d, dots } = linePath([0, 1, 2, 3, 4, 5], [1, 2, null, 3, 4, null], (t) => t, (v) => v);
    expect(d).toBe("M0.0,1.0 L1.0,2.0 M3.0,3.0 L4.0,4.0");
    expect(dots).toEqual([]);
  });
});

describe("metrics view", () => {
  function gateway(history: unknown) {
    return (req: Seen): Response => {
      const path = req.url.pathname;
      if (path === "/api/v1/whoami") return json({ name: "watcher", role: "viewer" });
      if (path === "/api/v1/events") return openStream();
      if (path === "/api/v1/metrics/history") return json(history);
      return json({ detail: "not mocked" }, 404);
    };
  }

  it('shows "No samples yet" for an empty history', async () => {
    sessionStorage.setItem(TOKEN_KEY, "viewer-token");
    const seen = mockFetch(gateway({ source: "gateway", step: 10, times: [], series: [] }));
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/metrics"]}>
        <App />
      </MemoryRouter>,
    );
    expect(await screen.findByRole("heading", { level: 1, name: "Metrics" })).toBeInTheDocument();
    expect(await screen.findByText("No samples yet")).toBeInTheDocument();
    expect(screen.getByText(/sampled by the gateway/)).toBeInTheDocument();
    expect(screen.getByRole("group", { name: "Window" })).toBeInTheDocument();
    expect(screen.getByRole("radio", { name: "Last 15 minutes" })).toBeChecked();
    expect(screen.getByRole("link", { name: "Metrics" })).toHaveAttribute("aria-current", "page");
    expect(seen.find((r) => r.url.pathname === "/api/v1/metrics/history")?.url.searchParams.get("window")).toBe("15m");
  });

  it("draws one chart per series name", async () => {
    sessionStorage.setItem(TOKEN_KEY, "viewer-token");
    mockFetch(
      gateway({
        source: "prometheus",
        step: 20,
        times: [1796025660, 1796025680],
        series: [
          { name: "agents", unit: "agents", labels: { status: "running" }, values: [2, 3] },
          { name: "agents", unit: "agents", labels: { status: "failed" }, values: [0, 1] },
          { name: "host_memory_bytes", unit: "bytes", labels: { host: "h1" }, values: [1048576 * 100, 1048576 * 200] },
          { name: "delivery_latency_seconds", unit: "seconds", labels: { quantile: "0.95" }, values: [0.05, null] },
        ],
      }),
    );
    render(
      <MemoryRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }} initialEntries={["/metrics"]}>
        <App />
      </MemoryRouter>,
    );
    const agents = await screen.findByRole("figure", { name: "Agents by status" });
    expect(within(agents).getByText("running")).toBeInTheDocument();
    expect(agents).toHaveTextContent("running: 3 agents");
    expect(agents).toHaveTextContent("failed: 1 agents");
    expect(screen.getByRole("figure", { name: "Host memory" })).toHaveTextContent("h1: 200 MiB");
    expect(screen.getByRole("figure", { name: "Delivery latency" })).toHaveTextContent("p95: —");
    expect(screen.getByText(/from Prometheus/)).toBeInTheDocument();
    for (const title of ["Messages per second", "Host CPU", "Executions per second"]) {
      expect(screen.getByRole("figure", { name: title })).toBeInTheDocument();
    }
  });
});
