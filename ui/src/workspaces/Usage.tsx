import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Usage as UsageBody } from "../api/types";
import { minutes } from "./format";

/** How often the time used is read again (a running session uses it up). */
const REFRESH_MS = 60_000;

/** Workspace time used in this period against the quota, as a bar; read again every minute
 * and whenever `tick` changes (a session ended). */
export function Usage({ tick }: { tick: number }) {
  const [usage, setUsage] = useState<UsageBody | null>(null);
  useEffect(() => {
    const read = () => api<UsageBody>("GET", "/users/me/usage").then(setUsage).catch(() => setUsage(null));
    void read();
    const timer = window.setInterval(read, REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [tick]);
  if (!usage) return null;
  const used = minutes(usage.used_seconds);
  if (usage.quota_minutes == null) {
    return <p className="muted" data-testid="usage">Workspace time used this {usage.period}: {used} (no quota).</p>;
  }
  const quota = usage.quota_minutes;
  const left = minutes(usage.remaining_seconds ?? 0);
  return (
    <p className="usage" data-testid="usage">
      <label>
        Workspace time this {usage.period}: {used} of {quota} min used, {left} left
        <progress max={quota * 60} value={Math.min(usage.used_seconds, quota * 60)} />
      </label>
      <span className="muted"> resets {new Date(usage.resets_at).toLocaleString()}</span>
    </p>
  );
}
