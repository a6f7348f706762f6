import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Usage as UsageBody } from "../api/types";

/** Workspace time used in this period against the quota, as a bar. */
export function Usage() {
  const [usage, setUsage] = useState<UsageBody | null>(null);
  useEffect(() => {
    api<UsageBody>("GET", "/users/me/usage").then(setUsage).catch(() => setUsage(null));
  }, []);
  if (!usage) return null;
  const used = Math.round(usage.used_seconds / 60);
  if (usage.quota_minutes == null) {
    return <p className="muted">Workspace time used this {usage.period}: {used} min (no quota).</p>;
  }
  const quota = usage.quota_minutes;
  return (
    <p className="usage">
      <label>
        Workspace time this {usage.period}: {used} of {quota} min
        <progress max={quota} value={Math.min(used, quota)} />
      </label>
      <span className="muted"> resets {new Date(usage.resets_at).toLocaleString()}</span>
    </p>
  );
}
