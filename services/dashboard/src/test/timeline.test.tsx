import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import { layoutTimeline, Timeline } from "../components/Timeline";

const t = (ms: number) => new Date(Date.UTC(2026, 10, 30, 1, 0, 0, ms)).toISOString();
const step = (id: string, parent: string | null, start: number, end: number): Schemas["StepView"] => ({
  id,
  type: "agent",
  status: "succeeded",
  parent,
  started_at: t(start),
  finished_at: t(end),
  attempts: 1,
  output: null,
  error: null,
});

const execution: Schemas["ExecutionView"] = {
  id: "x1",
  workflow_id: "w1",
  template: "fanout",
  template_version: "1",
  status: "succeeded",
  params: {},
  started_at: t(0),
  finished_at: t(400),
  error: null,
  version: 10,
  steps: [
    step("first", null, 0, 100),
    step("a", "parallel-1", 110, 300),
    step("b", "parallel-1", 120, 350),
    step("c", "parallel-1", 130, 380),
    step("last", null, 390, 400),
  ],
};

describe("timeline", () => {
  it("lays the steps of a parallel group in separate lanes", () => {
    const lanes = layoutTimeline(execution.steps, execution.started_at, execution.finished_at ?? null);
    const ids = lanes.map((l) => l.steps.map((s) => s.step.id));
    expect(ids).toEqual([["first", "a", "last"], ["b"], ["c"]]);
    const first = lanes[0]?.steps[0];
    expect(first?.left).toBe(0);
    expect(first?.width).toBeCloseTo(25);
  });

  it("renders one lane per parallel branch with each step's status as text", () => {
    render(<Timeline execution={execution} />);
    const lanes = within(screen.getByRole("list", { name: "Timeline" })).getAllByRole("listitem");
    expect(lanes).toHaveLength(3);
    expect(within(lanes[1]!).getByText("b")).toBeInTheDocument();
    expect(within(lanes[2]!).getByText("c")).toBeInTheDocument();
    expect(within(lanes[0]!).queryByText("b")).toBeNull();
    expect(within(lanes[0]!).getAllByText("succeeded")).toHaveLength(3);
  });
});
