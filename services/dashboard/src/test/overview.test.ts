import { describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { latestSum } from "../pages/Overview";

describe("latestSum", () => {
  const history: Schemas["MetricsHistory"] = {
    source: "gateway",
    step: 10,
    times: [100, 110, 120],
    series: [
      { name: "messages_per_second", unit: "1/s", labels: { template: "a" }, values: [1, 2, null] },
      { name: "messages_per_second", unit: "1/s", labels: { template: "b" }, values: [3, 4, null] },
      { name: "agents", unit: "", labels: {}, values: [7, 7, 7] },
    ],
  };

  it("sums the newest sample any line of the series has, skipping a last gap", () => {
    expect(latestSum(history, "messages_per_second")).toBe(6);
  });

  it("is null without any value", () => {
    expect(latestSum(history, "nothing")).toBeNull();
    expect(latestSum({ ...history, times: [], series: [] }, "agents")).toBeNull();
  });
});
