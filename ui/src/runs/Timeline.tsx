import type { NodeRecord } from "../api/types";

/** Each node's attempt as a bar on the run's time axis (a Gantt chart of the run). */
export function Timeline({ nodes, now }: { nodes: NodeRecord[]; now: number }) {
  const started = nodes.filter((n) => n.started_at);
  if (!started.length) return null;
  const start = Math.min(...started.map((n) => Date.parse(n.started_at as string)));
  const end = Math.max(
    ...started.map((n) => (n.finished_at ? Date.parse(n.finished_at) : now)),
    start + 1,
  );
  const span = end - start;
  return (
    <section className="timeline" aria-label="Timeline">
      <h2>Timeline <small className="muted">{span} ms</small></h2>
      {started.map((n) => {
        const from = Date.parse(n.started_at as string) - start;
        const to = (n.finished_at ? Date.parse(n.finished_at) : now) - start;
        return (
          <div className="lane" key={n.id}>
            <span className="label">{n.id}</span>
            <span className="track">
              <span
                className={`bar status-${n.status}`}
                style={{ left: `${(100 * from) / span}%`, width: `${Math.max(0.5, (100 * (to - from)) / span)}%` }}
                title={`${n.id}: ${to - from} ms`}
              />
            </span>
          </div>
        );
      })}
    </section>
  );
}
