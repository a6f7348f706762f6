// One run: its graph with every node coloured by its state, live over the run's WebSocket
// (polling if it cannot be opened); each node's inputs, outputs and error, and every attempt
// with its times, error and logs; cancel and re-run from a node.

import {
  applyNodeChanges,
  Background,
  Controls,
  type Edge,
  type NodeChange,
  ReactFlow,
  ReactFlowProvider,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useCallback, useEffect, useMemo, useState } from "react";
import { api, webSocket } from "../api/client";
import type { NodeStatus, PluginVersion, Run, Workflow } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { type DesignNode, fromDefinition } from "../designer/graph";
import { autoLayout } from "../designer/layout";
import { PluginNode } from "../designer/PluginNode";
import { Link, navigate } from "../router";
import { Attempts } from "./Attempts";
import { duration } from "./format";
import { Timeline } from "./Timeline";

const nodeTypes = { plugin: PluginNode };
/** How often an unfinished run is read again when its events cannot be followed. */
const POLL_MS = 500;

/** A message of `/runs/{id}/events`. */
interface RunEvent {
  type: string;
  run?: Run;
  node?: string;
  attempt?: number;
}

/** The node state each event means. */
const NODE_STATE: Record<string, NodeStatus> = {
  node_started: "running",
  node_retried: "retrying",
  node_succeeded: "succeeded",
  node_failed: "failed",
  node_skipped: "skipped",
};

function finished(status: string): boolean {
  return status === "succeeded" || status === "failed" || status === "cancelled";
}

export default function RunView({ runId }: { runId: string }) {
  const [run, setRun] = useState<Run | null>(null);
  const [graph, setGraph] = useState<{ nodes: DesignNode[]; edges: Edge[] } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [open, setOpen] = useState<string | null>(null);

  useEffect(() => {
    let stop = false;
    let timer: number | undefined;
    // Polling: when the WebSocket cannot be opened or drops before the run ends.
    const poll = async () => {
      try {
        const current = await api<Run>("GET", `/runs/${encodeURIComponent(runId)}`);
        if (stop) return;
        setRun(current);
        if (!finished(current.status)) timer = window.setTimeout(poll, POLL_MS);
      } catch (err) {
        setError(err);
      }
    };
    // Live: a snapshot of the run, then its events until it finishes.
    const socket = webSocket(`/runs/${encodeURIComponent(runId)}/events`);
    let done = false;
    socket.onmessage = (message) => {
      const event = JSON.parse(String(message.data)) as RunEvent;
      if (event.type === "snapshot" && event.run) {
        setRun(event.run);
        done = finished(event.run.status);
        return;
      }
      if (event.type === "run_finished") {
        done = true;
        // The finished run with every node's outputs and logs.
        void poll();
        return;
      }
      const status = NODE_STATE[event.type];
      if (status && event.node) {
        setRun((r) => r && {
          ...r,
          status: r.status === "queued" ? "running" : r.status,
          nodes: (r.nodes ?? []).map((n) =>
            n.id === event.node
              ? { ...n, status, attempts: event.attempt ?? n.attempts }
              : n,
          ),
        });
      }
    };
    socket.onclose = () => {
      if (!done && !stop) void poll();
    };
    return () => {
      stop = true;
      socket.close();
      window.clearTimeout(timer);
    };
  }, [runId]);

  const workflowId = run?.workflow_id;
  const version = run?.workflow_version;
  useEffect(() => {
    if (!workflowId) return;
    (async () => {
      try {
        const [workflow, plugins] = await Promise.all([
          api<Workflow>("GET", `/workflows/${workflowId}?version=${version}`),
          api<PluginVersion[]>("GET", "/plugins?kind=node"),
        ]);
        const loaded = fromDefinition(workflow.definition, plugins);
        const nodes = loaded.placed ? loaded.nodes : await autoLayout(loaded.nodes, loaded.edges);
        setGraph({ nodes, edges: loaded.edges });
      } catch (err) {
        setError(err);
      }
    })();
  }, [workflowId, version]);

  // The flow is controlled: its nodes keep the sizes React Flow measured, or each status update
  // (new node objects) would leave them unmeasured, hidden, with nothing to measure them again.
  const onNodesChange = useCallback(
    (changes: NodeChange<DesignNode>[]) =>
      setGraph((g) => g && { ...g, nodes: applyNodeChanges(changes, g.nodes) }),
    [],
  );

  const nodes = useMemo(
    () =>
      (graph?.nodes ?? []).map((n) => {
        const status = run?.nodes?.find((r) => r.id === n.id)?.status;
        return status ? { ...n, data: { ...n.data, status } } : n;
      }),
    [graph, run],
  );

  return (
    <main className="run-view">
      <header className="run-head">
        <h1>
          Run <code>{runId.slice(0, 8)}</code>{" "}
          {run && (
            <span className={`badge status-${run.status}`} data-testid="run-status">{run.status}</span>
          )}
        </h1>
        {run && (
          <div className="actions">
            <Link to={`/workflows/${run.workflow_id}`}>Open the workflow</Link>
            {!finished(run.status) && (
              <button type="button" onClick={() =>
                api("POST", `/runs/${runId}/cancel`).catch(setError)}>
                Cancel
              </button>
            )}
          </div>
        )}
        {run?.error && <div className="error" role="alert">{run.error}</div>}
        <ErrorBox error={error} />
        {!run && !error && <p aria-busy="true">Loading…</p>}
      </header>
      <div className="run-canvas">
        <ReactFlowProvider>
          <ReactFlow nodes={nodes} edges={graph?.edges ?? []} nodeTypes={nodeTypes}
            onNodesChange={onNodesChange} nodesDraggable={false} nodesConnectable={false} colorMode="system" fitView>
            <Background />
            <Controls showInteractive={false} />
          </ReactFlow>
        </ReactFlowProvider>
      </div>
      <section className="run-nodes" aria-label="Nodes of the run">
        <table>
          <thead>
            <tr><th>Node</th><th>Plugin</th><th>State</th><th>Attempts</th><th>Duration</th></tr>
          </thead>
          <tbody>
            {(run?.nodes ?? []).map((n) => (
              <tr key={n.id} className={open === n.id ? "open" : undefined}>
                <td>
                  <button type="button" className="link" aria-expanded={open === n.id}
                    onClick={() => setOpen(open === n.id ? null : n.id)}>{n.id}</button>
                  {open === n.id && (
                    <div className="node-detail">
                      {n.error && <div className="error">{n.error.kind}: {n.error.message}</div>}
                      {run && finished(run.status) && (
                        <button type="button" onClick={async () => {
                          try {
                            const again = await api<Run>("POST", `/runs/${runId}/rerun`, { from: n.id });
                            navigate(`/runs/${again.id}`);
                          } catch (err) {
                            setError(err);
                          }
                        }}>
                          Re-run from {n.id}
                        </button>
                      )}
                      <h4>Inputs</h4>
                      <pre>{JSON.stringify(n.inputs, null, 2)}</pre>
                      <h4>Outputs</h4>
                      <pre>{JSON.stringify(n.outputs, null, 2)}</pre>
                      <h4>Attempts</h4>
                      <Attempts runId={runId} node={n.id} change={`${n.status}:${n.attempts}`} />
                    </div>
                  )}
                </td>
                <td>{n.plugin}</td>
                <td><span className={`badge status-${n.status}`}>{n.status}</span></td>
                <td>{n.attempts}</td>
                <td>{duration(n.started_at, n.finished_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <Timeline nodes={run?.nodes ?? []} now={Date.now()} />
      </section>
    </main>
  );
}
