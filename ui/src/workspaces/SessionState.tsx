// A project's session on the Workspaces page: its state, when the reaper stops it (idle and
// lifetime countdowns, ticking every second), and "Stop (sync)" with its progress: the sync
// running (followed over the session events' WebSocket), then what it brought back (files
// synced, deleted, refused and why) or why it failed.

import { useEffect, useState } from "react";
import { api, webSocket } from "../api/client";
import type { SessionEvent, StoppedSession, SyncReport, WorkspaceSession } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { countdown, syncSummary } from "./format";

/** The current time, read again every second while `running`. */
function useNow(running: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!running) return;
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [running]);
  return now;
}

export function SessionState({ session }: { session: WorkspaceSession | null | undefined }) {
  const now = useNow(!!session?.idle_stop_at || !!session?.lifetime_stop_at);
  if (!session) return <>—</>;
  return (
    <div className="session-state">
      <span className={`badge status-${session.status}`}>{session.kind}: {session.status}</span>
      {session.idle_stop_at && (
        <div className="countdown" data-testid="idle-countdown">
          Stops if idle in {countdown(session.idle_stop_at, now)}
        </div>
      )}
      {session.lifetime_stop_at && (
        <div className="countdown" data-testid="lifetime-countdown">
          Stops in any case in {countdown(session.lifetime_stop_at, now)}
        </div>
      )}
      {session.error && <div className="muted">{session.error}</div>}
    </div>
  );
}

/** Where a stop is: syncing (since when), the sync's result while the container goes, done. */
type Stop =
  | { phase: "syncing"; since: number }
  | { phase: "removing"; report: SyncReport }
  | { phase: "stopped"; report: SyncReport | null }
  | { phase: "failed"; error: unknown };

export function StopButton({
  projectId,
  session,
  onStopped,
}: {
  projectId: string;
  session: WorkspaceSession;
  onStopped: (stopped: StoppedSession) => void;
}) {
  const [stop, setStop] = useState<Stop | null>(null);
  const now = useNow(stop?.phase === "syncing");

  const run = async () => {
    setStop({ phase: "syncing", since: Date.now() });
    // The sync's result as soon as it is known, before the container is removed.
    const events = webSocket("/sessions/events");
    events.onmessage = (message) => {
      const event = JSON.parse(String(message.data)) as SessionEvent;
      if (event.session_id === session.session_id && event.type === "sync" && event.sync) {
        const report = event.sync;
        setStop((s) => (s?.phase === "syncing" ? { phase: "removing", report } : s));
      }
    };
    try {
      const stopped = await api<StoppedSession>("DELETE", `/projects/${projectId}/session`);
      setStop({ phase: "stopped", report: stopped.sync ?? null });
      onStopped(stopped);
    } catch (error) {
      setStop({ phase: "failed", error });
    } finally {
      events.close();
    }
  };

  const active = session.status !== "stopped" && session.status !== "failed";
  return (
    <div className="stop">
      {active && (
        <button type="button" disabled={stop?.phase === "syncing" || stop?.phase === "removing"} onClick={run}>
          Stop (sync)
        </button>
      )}
      <div role="status" aria-live="polite" data-testid="stop-progress">
        {stop?.phase === "syncing" && (
          <span aria-busy="true">
            Syncing the workspace's files back to the project… {Math.round((now - stop.since) / 1000)} s
          </span>
        )}
        {stop?.phase === "removing" && (
          <span aria-busy="true">{syncSummary(stop.report)}; removing the container…</span>
        )}
        {stop?.phase === "stopped" && (
          <span>Stopped. {stop.report ? syncSummary(stop.report) : "Nothing to sync."}</span>
        )}
      </div>
      {(stop?.phase === "removing" || stop?.phase === "stopped") && stop.report?.refused.length ? (
        <ul className="refused" aria-label="Not synced">
          {stop.report.refused.map((r) => (
            <li key={r.path}><code>{r.path}</code>: {r.reason}</li>
          ))}
        </ul>
      ) : null}
      {stop?.phase === "failed" && <ErrorBox error={stop.error} />}
    </div>
  );
}
