import { describe, expect, it } from "vitest";
import { clock, duration, logLine } from "./format";

describe("duration", () => {
  const start = "2026-01-01T10:00:00.000Z";
  it("is a dash before the start", () => {
    expect(duration(null, null)).toBe("—");
  });
  it("writes milliseconds, seconds and minutes", () => {
    expect(duration(start, "2026-01-01T10:00:00.340Z")).toBe("340 ms");
    expect(duration(start, "2026-01-01T10:00:02.500Z")).toBe("2.5 s");
    expect(duration(start, "2026-01-01T10:03:04.000Z")).toBe("3 min 4 s");
  });
  it("counts up to now while running", () => {
    expect(duration(start, null, Date.parse("2026-01-01T10:00:01.000Z"))).toBe("1.0 s");
  });
});

describe("logLine", () => {
  it("writes a log line with its level", () => {
    expect(logLine({ type: "log", level: "warn", message: "slow disk" })).toBe("WARN slow disk");
  });
  it("writes progress as a percentage", () => {
    expect(logLine({ type: "progress", fraction: 0.25, message: "reading" })).toBe("PROGRESS 25% reading");
    expect(logLine({ type: "progress", fraction: 1, message: "" })).toBe("PROGRESS 100%");
  });
  it("writes anything else as JSON", () => {
    expect(logLine({ other: 1 })).toBe('{"other":1}');
    expect(logLine("text")).toBe('"text"');
  });
});

describe("clock", () => {
  it("keeps the milliseconds", () => {
    expect(clock("2026-01-01T10:00:00.045Z")).toMatch(/^\d\d:00:00\.045$/);
  });
});
