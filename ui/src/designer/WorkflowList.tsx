import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Page, Workflow } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { Link } from "../router";

/** The caller's workflows, a page at a time, and the way to a new one. */
export function WorkflowList() {
  const [items, setItems] = useState<Workflow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);

  const more = async (after: string | null) => {
    setLoading(true);
    try {
      const page = await api<Page<Workflow>>(
        "GET",
        `/workflows?limit=50${after ? `&cursor=${encodeURIComponent(after)}` : ""}`,
      );
      setItems((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor);
    } catch (err) {
      setError(err);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void more(null), []);

  return (
    <main className="page">
      <h1>Workflows</h1>
      <p><Link to="/workflows/new" className="button">New workflow</Link></p>
      <ErrorBox error={error} />
      {!loading && !items.length && !error && <p className="muted">No workflows yet.</p>}
      <table>
        <thead><tr><th>Name</th><th>Version</th><th>Nodes</th><th>Updated</th></tr></thead>
        <tbody>
          {items.map((w) => (
            <tr key={w.id}>
              <td><Link to={`/workflows/${w.id}`}>{w.name}</Link></td>
              <td>{w.version}</td>
              <td>{w.definition.nodes.length}</td>
              <td>{new Date(w.updated_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {cursor && <button type="button" disabled={loading} onClick={() => more(cursor)}>More</button>}
      {loading && <p aria-busy="true">Loading…</p>}
    </main>
  );
}
