import { describe, expect, it } from "vitest";
import type { SyncReport } from "../api/types";
import { countdown, minutes, syncSummary } from "./format";

describe("countdown", () => {
  const now = Date.parse("2026-01-01T10:00:00Z");
  it("writes hours and minutes, minutes and seconds, or seconds", () => {
    expect(countdown("2026-01-01T11:02:30Z", now)).toBe("1 h 02 min");
    expect(countdown("2026-01-01T10:12:05Z", now)).toBe("12 min 05 s");
    expect(countdown("2026-01-01T10:00:40Z", now)).toBe("40 s");
  });
  it("says now once the time has come", () => {
    expect(countdown("2026-01-01T10:00:00Z", now)).toBe("now");
    expect(countdown("2026-01-01T09:00:00Z", now)).toBe("now");
  });
});

describe("minutes", () => {
  it("keeps a tenth below ten minutes", () => {
    expect(minutes(30)).toBe("0.5 min");
    expect(minutes(599)).toBe("9.9 min");
    expect(minutes(2530)).toBe("42 min");
  });
});

describe("syncSummary", () => {
  const report = (over: Partial<SyncReport>): SyncReport => ({
    written: [], written_count: 0, deleted: [], deleted_count: 0, unchanged: 0,
    refused: [], refused_count: 0, incomplete: null, ...over,
  });
  it("counts what was written, deleted and refused", () => {
    expect(syncSummary(report({ written_count: 1 }))).toBe("1 file synced, 0 refused");
    expect(syncSummary(report({ written_count: 2, deleted_count: 1, refused_count: 3 }))).toBe(
      "2 files synced, 1 deleted, 3 refused",
    );
  });
  it("says when the workspace could not be read to its end", () => {
    expect(syncSummary(report({ incomplete: "the container stopped" }))).toBe(
      "0 files synced, 0 refused (incomplete: the container stopped)",
    );
  });
});
