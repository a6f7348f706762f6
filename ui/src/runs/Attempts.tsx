// Every attempt of one node of a run, from `GET /runs/{id}/nodes/{node}/attempts`: its start and
// end, how it went, its error and its logs. Read again whenever the node's state changes, so a
// retried node's attempts appear as they happen.

import { useEffect, useState } from "react";
import { api } from "../api/client";
import type { Attempt } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { clock, duration, logLine } from "./format";

export function Attempts({ runId, node, change }: { runId: string; node: string; change: string }) {
  const [attempts, setAttempts] = useState<Attempt[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stale = false;
    api<Attempt[]>(
      "GET",
      `/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(node)}/attempts`,
    )
      .then((read) => !stale && setAttempts(read))
      .catch((err) => !stale && setError(err));
    return () => {
      stale = true;
    };
  }, [runId, node, change]);

  if (error) return <ErrorBox error={error} />;
  if (!attempts) return <p aria-busy="true">Loading the attempts…</p>;
  if (!attempts.length) {
    return <p className="muted">No attempt: the node did not run in this run.</p>;
  }
  return (
    <ol className="attempts" aria-label={`Attempts of ${node}`}>
      {attempts.map((a) => (
        <li key={a.attempt} data-testid={`attempt-${node}-${a.attempt}`} data-status={a.status}>
          <div className="attempt-head">
            <strong>Attempt {a.attempt}</strong>{" "}
            <span className={`badge status-${a.status}`}>{a.status}</span>{" "}
            <span className="muted">
              {clock(a.started_at)} → {a.finished_at ? clock(a.finished_at) : "…"} (
              {duration(a.started_at, a.finished_at)})
            </span>
          </div>
          {a.error && (
            <div className="error">
              {a.error.kind}: {a.error.message}
              {a.error.retryable && a.status === "failed" ? " (retryable)" : ""}
            </div>
          )}
          <pre className="logs">
            {a.logs.map(logLine).join("\n") || "no logs"}
          </pre>
        </li>
      ))}
    </ol>
  );
}
