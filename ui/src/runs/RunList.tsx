// A workflow's runs, newest first, a page at a time, filtered by state.

import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Page, Run, RunStatus } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { Link } from "../router";
import { duration } from "./format";

const STATES: RunStatus[] = ["queued", "running", "succeeded", "failed", "cancelled"];

export function RunList({ workflowId }: { workflowId: string }) {
  const [runs, setRuns] = useState<Run[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [state, setState] = useState<RunStatus | "">("");
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);

  const more = async (after: string | null) => {
    setLoading(true);
    try {
      const page = await api<Page<Run>>(
        "GET",
        `/workflows/${encodeURIComponent(workflowId)}/runs?limit=50${after ? `&cursor=${encodeURIComponent(after)}` : ""}`,
      );
      setRuns((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void more(null), [workflowId]);

  const shown = state ? runs.filter((r) => r.status === state) : runs;
  return (
    <main className="page">
      <h1>Runs</h1>
      <p>
        <Link to={`/workflows/${workflowId}`}>Open the workflow</Link>{" "}
        <label>
          State
          <select value={state} onChange={(e) => setState(e.target.value as RunStatus | "")}>
            <option value="">any</option>
            {STATES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
      </p>
      <ErrorBox error={error} />
      <table>
        <thead><tr><th>Started</th><th>Version</th><th>State</th><th>Duration</th></tr></thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.id}>
              <td><Link to={`/runs/${r.id}`}>{new Date(r.created_at).toLocaleString()}</Link></td>
              <td>{r.workflow_version}</td>
              <td><span className={`badge status-${r.status}`}>{r.status}</span></td>
              <td>{r.finished_at ? duration(r.started_at, r.finished_at) : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && !shown.length && !error && <p className="muted">No runs{state && ` ${state}`}.</p>}
      {cursor && <button type="button" disabled={loading} onClick={() => more(cursor)}>More</button>}
      {loading && <p aria-busy="true">Loading…</p>}
    </main>
  );
}
