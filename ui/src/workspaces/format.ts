// How the Workspaces page writes a session's countdowns, quota time and a sync's result: small
// pure functions, tested apart.

import type { SyncReport } from "../api/types";

/** The time left until `at` from `now`: "1 h 02 min", "12 min 05 s", "40 s", or "now". */
export function countdown(at: string, now: number): string {
  const left = Math.floor((Date.parse(at) - now) / 1000);
  if (left <= 0) return "now";
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  if (h) return `${h} h ${two(m)} min`;
  if (m) return `${m} min ${two(s)} s`;
  return `${s} s`;
}

/** Minutes of session time, rounded down to a tenth below ten minutes: "0.5 min", "42 min". */
export function minutes(seconds: number): string {
  const min = seconds / 60;
  return min < 10 ? `${Math.floor(min * 10) / 10} min` : `${Math.floor(min)} min`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** What a sync brought back, in one line: "2 files synced, 1 deleted, 1 refused". */
export function syncSummary(report: SyncReport): string {
  const parts = [plural(report.written_count, "file synced", "files synced")];
  if (report.deleted_count) parts.push(`${report.deleted_count} deleted`);
  parts.push(`${report.refused_count} refused`);
  let line = parts.join(", ");
  if (report.incomplete) line += ` (incomplete: ${report.incomplete})`;
  return line;
}
