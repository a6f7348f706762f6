// How the runs pages write times and a node's log lines: small pure functions, tested apart.

/** The time from `start` to `end` (or to `now` while it runs): "340 ms", "2.5 s", "3 min 4 s". */
export function duration(start?: string | null, end?: string | null, now = Date.now()): string {
  if (!start) return "—";
  const ms = Math.max(0, (end ? Date.parse(end) : now) - Date.parse(start));
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** One line of a node's logs as stored: `{type: "log", level, message}` or
 * `{type: "progress", fraction, message}`; anything else as its JSON. */
export function logLine(entry: unknown): string {
  if (entry && typeof entry === "object") {
    const e = entry as Record<string, unknown>;
    if (e.type === "log" && typeof e.message === "string") {
      return `${String(e.level ?? "info").toUpperCase()} ${e.message}`;
    }
    if (e.type === "progress" && typeof e.fraction === "number") {
      const message = typeof e.message === "string" && e.message ? ` ${e.message}` : "";
      return `PROGRESS ${Math.round(e.fraction * 100)}%${message}`;
    }
  }
  return JSON.stringify(entry);
}

/** A time of day with milliseconds, for attempts that start and end within a second. */
export function clock(at: string): string {
  const d = new Date(at);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
