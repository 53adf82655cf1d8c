import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { StatusBadge } from "../components/Status";

describe("StatusBadge", () => {
  it("shows the status as text and as colour", () => {
    render(
      <>
        <StatusBadge status="failed" />
        <StatusBadge status="running" />
      </>,
    );
    const failed = screen.getByText("failed");
    expect(failed).toBeVisible();
    expect(failed).toHaveClass("status-bad");
    expect(screen.getByText("running")).toHaveClass("status-ok");
  });
});
