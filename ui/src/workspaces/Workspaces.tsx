// Projects and their workspaces: open Jupyter or code-server in a new tab (on the session's
// own origin, through the one-time link), see the session's state and when it will be stopped,
// stop it with a sync (its progress and result shown), and the time used against the quota.

import { useCallback, useEffect, useState } from "react";
import { ApiError, api } from "../api/client";
import type { Page, Project, WorkspaceSession } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { ProjectFiles } from "./ProjectFiles";
import { SessionState, StopButton } from "./SessionState";
import { Usage } from "./Usage";

/** How often sessions are read again while one is ready. */
const REFRESH_MS = 30_000;
/** How long the page waits for a session to become ready. */
const START_TIMEOUT_MS = 180_000;

export function Workspaces() {
  const [projects, setProjects] = useState<Project[]>([]);
  const [sessions, setSessions] = useState<Record<string, WorkspaceSession | null>>({});
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  // Bumped when sessions end, so the time used is read again.
  const [usageTick, setUsageTick] = useState(0);

  const load = useCallback(async () => {
    try {
      const page = await api<Page<Project> | Project[]>("GET", "/projects");
      const list = Array.isArray(page) ? page : page.items;
      setProjects(list);
      const found: Record<string, WorkspaceSession | null> = {};
      await Promise.all(
        list.map(async (p) => {
          try {
            found[p.id] = await api<WorkspaceSession>("GET", `/projects/${p.id}/session`);
          } catch (err) {
            if (!(err instanceof ApiError && err.status === 404)) throw err;
            found[p.id] = null;
          }
        }),
      );
      setSessions(found);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => void load(), [load]);
  // A ready session's idle countdown starts again with each use: read the sessions again now
  // and then while one is ready.
  const anyReady = Object.values(sessions).some((s) => s?.status === "ready");
  useEffect(() => {
    if (!anyReady) return;
    const timer = window.setInterval(() => void load(), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [anyReady, load]);

  const openSession = async (project: Project, kind: "jupyter" | "code-server") => {
    // Opened now, inside the click, so that no pop-up blocker stops it; pointed at the
    // session's one-time link once the session is ready.
    const tab = window.open("", "_blank");
    setBusy(project.id);
    setError(null);
    try {
      const opened = await api<WorkspaceSession>("POST", `/projects/${project.id}/session`, { kind });
      let session = opened;
      setSessions((s) => ({ ...s, [project.id]: session }));
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (session.status !== "ready") {
        if (session.status === "failed" || session.status === "stopped") {
          throw new Error(`the session ${session.status}: ${session.error ?? "no reason given"}`);
        }
        if (Date.now() > deadline) throw new Error("the session did not become ready in time");
        await new Promise((r) => window.setTimeout(r, 500));
        session = await api<WorkspaceSession>("GET", `/projects/${project.id}/session`);
        setSessions((s) => ({ ...s, [project.id]: session }));
      }
      if (tab && opened.link) tab.location.href = opened.link;
      else tab?.close();
    } catch (err) {
      tab?.close();
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <main className="page">
      <h1>Workspaces</h1>
      <Usage tick={usageTick} />
      <form className="inline" onSubmit={async (e) => {
        e.preventDefault();
        try {
          await api("POST", "/projects", { name });
          setName("");
          await load();
        } catch (err) {
          setError(err);
        }
      }}>
        <label>New project <input value={name} required onChange={(e) => setName(e.target.value)} /></label>
        <button type="submit">Create</button>
      </form>
      <ErrorBox error={error} />
      <table>
        <thead><tr><th>Project</th><th>Session</th><th>Open</th><th /></tr></thead>
        <tbody>
          {projects.map((p) => {
            const session = sessions[p.id];
            return (
              <tr key={p.id}>
                <td>
                  <button type="button" className="link" aria-expanded={open === p.id}
                    onClick={() => setOpen(open === p.id ? null : p.id)}>{p.name}</button>
                  {open === p.id && <ProjectFiles projectId={p.id} />}
                </td>
                <td><SessionState session={session} /></td>
                <td>
                  <button type="button" disabled={busy === p.id} onClick={() => openSession(p, "jupyter")}>Jupyter</button>{" "}
                  <button type="button" disabled={busy === p.id} onClick={() => openSession(p, "code-server")}>VS Code</button>
                  {busy === p.id && (
                    <span aria-busy="true" role="status"> {session ? session.status : "opening"}…</span>
                  )}
                </td>
                <td>
                  {session && (
                    <StopButton projectId={p.id} session={session} onStopped={(stopped) => {
                      setSessions((all) => ({ ...all, [p.id]: stopped }));
                      setUsageTick((t) => t + 1);
                    }} />
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {!projects.length && <p className="muted">No projects yet.</p>}
    </main>
  );
}
