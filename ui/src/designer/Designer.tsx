// The workflow designer: a palette of node plugins, the canvas (React Flow), the selected
// node's configuration form (from its JSON Schema), and save / validate / run through the API.

import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  addEdge,
  applyEdgeChanges,
  applyNodeChanges,
  useReactFlow,
  useStoreApi,
  type Connection,
  type Edge,
  type EdgeChange,
  type NodeChange,
} from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, api } from "../api/client";
import type { Definition, Fault, NodeSpec, Page, PluginVersion, Run, Workflow } from "../api/types";
import { ErrorBox } from "../components/ErrorBox";
import { navigate } from "../router";
import { ConfigPanel } from "./ConfigPanel";
import {
  type DesignNode,
  diffGraph,
  edgeId,
  freshId,
  fromDefinition,
  newestNodes,
  refusal,
  toDefinition,
} from "./graph";
import { History } from "./history";
import {
  LARGE,
  autoLayout,
  fittedViewport,
  measuredAsDrawn,
  quickLayout,
  warmLayout,
  withEstimatedSizes,
} from "./layout";
import { PluginNode } from "./PluginNode";

const nodeTypes = { plugin: PluginNode };
const DRAG_TYPE = "application/x-weft-plugin";

interface Graph {
  nodes: DesignNode[];
  edges: Edge[];
}

export default function DesignerPage({ workflowId }: { workflowId: string | null }) {
  return (
    <ReactFlowProvider>
      <Designer workflowId={workflowId} />
    </ReactFlowProvider>
  );
}

function Designer({ workflowId }: { workflowId: string | null }) {
  const flow = useReactFlow<DesignNode, Edge>();
  const store = useStoreApi();
  const [plugins, setPlugins] = useState<PluginVersion[]>([]);
  const [nodes, setNodes] = useState<DesignNode[]>([]);
  const [edges, setEdges] = useState<Edge[]>([]);
  const [name, setName] = useState("my-workflow");
  const [workflow, setWorkflow] = useState<Workflow | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const history = useRef(new History<Graph>());
  const clipboard = useRef<DesignNode[]>([]);
  const graph = useRef<Graph>({ nodes, edges });
  graph.current = { nodes, edges };

  const palette = useMemo(() => newestNodes(plugins), [plugins]);
  // Bumped to fit the view once laid-out nodes have rendered.
  const [fitTick, setFitTick] = useState(0);
  // Each layout is shown whole, from the nodes' positions as they are now (the canvas's own fit
  // could still see the positions before, and on a big graph show an empty part of it).
  useEffect(() => {
    if (!fitTick) return;
    const { width, height, panZoom } = store.getState();
    void panZoom?.setViewport(fittedViewport(graph.current.nodes, width, height));
  }, [fitTick, store]);

  // What can wait until the page has drawn (a stored workflow: until it is on the canvas): the
  // minimap (on 1,000 nodes, 1,000 more elements for the first frame to style and lay out) and
  // elk's worker, so an auto-layout finds it ready and the opening does not share the processor.
  const [settled, setSettled] = useState(false);
  useEffect(() => {
    if (workflowId && !fitTick) return;
    const idle = window.requestIdleCallback(
      () => {
        setSettled(true);
        warmLayout(graph.current.nodes, graph.current.edges);
      },
      { timeout: 2000 },
    );
    return () => window.cancelIdleCallback(idle);
  }, [workflowId, fitTick]);

  /** Records the graph as it is before an edit, for undo. */
  const remember = useCallback(() => history.current.push(graph.current), []);

  const load = useCallback(
    async (definition: Definition, all: PluginVersion[]) => {
      const loaded = fromDefinition(definition, all);
      // Saved positions are used as they are; a definition without them is laid out.
      const large = loaded.nodes.length > LARGE;
      const laidOut = loaded.placed
        ? loaded.nodes
        : large
          ? quickLayout(loaded.nodes, loaded.edges)
          : await autoLayout(loaded.nodes, loaded.edges);
      const placed = large ? withEstimatedSizes(laidOut) : laidOut;
      const { width, height, panZoom } = store.getState();
      void panZoom?.setViewport(fittedViewport(placed, width, height));
      setName(definition.name);
      setEdges(loaded.edges);
      setNodes(placed);
      setFitTick((t) => t + 1);
    },
    [store],
  );

  useEffect(() => {
    (async () => {
      try {
        // The plugins and the workflow at once: neither needs the other to be asked for.
        const [all, stored] = await Promise.all([
          api<PluginVersion[]>("GET", "/plugins?kind=node"),
          workflowId
            ? api<Workflow>("GET", `/workflows/${encodeURIComponent(workflowId)}`)
            : Promise.resolve(null),
        ]);
        setPlugins(all);
        if (stored) {
          setWorkflow(stored);
          await load(stored.definition, all);
        }
      } catch (err) {
        setError(err);
      }
    })();
  }, [workflowId, load]);

  const addNode = useCallback(
    (plugin: PluginVersion, position: { x: number; y: number }) => {
      remember();
      const id = freshId(plugin.name, graph.current.nodes.map((n) => n.id));
      setNodes((ns) => [
        ...ns.map((n) => ({ ...n, selected: false })),
        {
          id,
          type: "plugin",
          position,
          selected: true,
          data: { spec: { id, type: plugin.name, config: {} }, plugin, faults: [] },
        },
      ]);
    },
    [remember],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange<DesignNode>[]) => {
      if (changes.some((c) => c.type === "remove")) remember();
      const measured = new Set(changes.flatMap((c) => (c.type === "dimensions" ? [c.id] : [])));
      setNodes((ns) => measuredAsDrawn(applyNodeChanges(changes, ns), measured));
    },
    [remember],
  );
  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      if (changes.some((c) => c.type === "remove")) remember();
      setEdges((es) => applyEdgeChanges(changes, es));
    },
    [remember],
  );

  /** The selected node's settings changed in its panel. */
  const changeSpec = useCallback(
    (spec: NodeSpec) => {
      remember();
      setNodes((ns) => ns.map((n) => (n.id === spec.id ? { ...n, data: { ...n.data, spec } } : n)));
    },
    [remember],
  );

  const isValidConnection = useCallback((c: Connection | Edge) => {
    const reason = refusal(c, graph.current.nodes, graph.current.edges);
    setNotice(reason);
    return reason === null;
  }, []);

  const onConnect = useCallback(
    (c: Connection) => {
      const reason = refusal(c, graph.current.nodes, graph.current.edges);
      if (reason) {
        setNotice(reason);
        return;
      }
      remember();
      setNotice(null);
      const spec = {
        source: c.source,
        target: c.target,
        source_port: c.sourceHandle ?? undefined,
        target_port: c.targetHandle ?? undefined,
      };
      setEdges((es) => addEdge({ ...c, id: edgeId(spec) }, es));
    },
    [remember],
  );

  const undo = useCallback(() => {
    const previous = history.current.undo(graph.current);
    if (previous) {
      setNodes(previous.nodes);
      setEdges(previous.edges);
    }
  }, []);
  const redo = useCallback(() => {
    const next = history.current.redo(graph.current);
    if (next) {
      setNodes(next.nodes);
      setEdges(next.edges);
    }
  }, []);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement | null;
      if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
      const mod = event.ctrlKey || event.metaKey;
      if (!mod) return;
      const key = event.key.toLowerCase();
      if (key === "z" && event.shiftKey) redo();
      else if (key === "z") undo();
      else if (key === "y") redo();
      else if (key === "c") {
        clipboard.current = graph.current.nodes.filter((n) => n.selected);
        return;
      } else if (key === "v" && clipboard.current.length) {
        remember();
        const taken = graph.current.nodes.map((n) => n.id);
        const pasted = clipboard.current.map((n) => {
          const id = freshId(n.id, taken);
          taken.push(id);
          return {
            ...n,
            id,
            selected: true,
            position: { x: n.position.x + 40, y: n.position.y + 40 },
            data: { ...n.data, spec: { ...n.data.spec, id }, faults: [] },
          };
        });
        setNodes((ns) => [...ns.map((n) => ({ ...n, selected: false })), ...pasted]);
      } else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redo, remember]);

  /** Pins the server's validation faults on the nodes and edges they name. */
  const showFaults = useCallback((err: unknown) => {
    const faults =
      err instanceof ApiError && Array.isArray(err.details.errors)
        ? (err.details.errors as Fault[])
        : [];
    setNodes((ns) =>
      ns.map((n) => ({
        ...n,
        data: {
          ...n.data,
          faults: faults.filter((f) => f.node === n.id).map((f) => f.message),
        },
      })),
    );
    setEdges((es) =>
      es.map((e, i) => {
        const fault = faults.find((f) => f.edge === i);
        return fault
          ? { ...e, label: fault.message, className: "faulty" }
          : { ...e, label: undefined, className: undefined };
      }),
    );
  }, []);

  const act = useCallback(
    async (what: string, action: () => Promise<void>) => {
      setBusy(what);
      setError(null);
      setNotice(null);
      try {
        await action();
        showFaults(null);
      } catch (err) {
        setError(err);
        showFaults(err);
      } finally {
        setBusy(null);
      }
    },
    [showFaults],
  );

  const definition = () => toDefinition(name, graph.current.nodes, graph.current.edges);

  const save = async (): Promise<Workflow> => {
    const saved = workflow
      ? await api<Workflow>("PUT", `/workflows/${workflow.id}`, definition())
      : await api<Workflow>("POST", "/workflows", definition());
    setWorkflow(saved);
    setNotice(`Saved version ${saved.version}`);
    if (!workflow) window.history.replaceState(null, "", `/workflows/${saved.id}`);
    return saved;
  };

  const selected = nodes.filter((n) => n.selected);

  // Comparing two stored versions: both on the canvas, the graph being edited kept aside.
  const [comparing, setComparing] = useState<
    { from: number; to: number; moved: number; stash: Graph } | null
  >(null);
  const compare = (from: number, to: number) =>
    act("compare", async () => {
      if (!workflow) return;
      const read = (v: number) =>
        api<Workflow>("GET", `/workflows/${workflow.id}?version=${v}`).then((w) => w.definition);
      const [a, b] = await Promise.all([read(from), read(to)]);
      const diff = diffGraph(a, b, plugins);
      setComparing((c) => ({ from, to, moved: diff.moved.length, stash: c?.stash ?? graph.current }));
      setEdges(diff.edges);
      setNodes(diff.placed ? diff.nodes : await autoLayout(diff.nodes, diff.edges));
      setFitTick((t) => t + 1);
    });
  const stopComparing = () => {
    if (!comparing) return;
    setNodes(comparing.stash.nodes);
    setEdges(comparing.stash.edges);
    setComparing(null);
  };

  return (
    <main className="designer">
      <aside className="palette" aria-label="Node types">
        <h2>Nodes</h2>
        <ul>
          {palette.map((p) => (
            <li
              key={p.name}
              draggable
              data-testid={`palette-${p.name}`}
              onDragStart={(event) => {
                event.dataTransfer.setData(DRAG_TYPE, p.name);
                event.dataTransfer.effectAllowed = "move";
              }}
              title={p.description.summary}
            >
              <div className="head">
                <span>
                  <strong>{p.name}</strong> <small>{p.version}</small>
                </span>
                <button
                type="button"
                aria-label={`Add ${p.name}`}
                onClick={() => addNode(p, flow.screenToFlowPosition({ x: 500, y: 300 }))}
              >
                  Add
                </button>
              </div>
              <div className="summary">{p.description.summary}</div>
            </li>
          ))}
        </ul>
      </aside>
      <section className="canvas-column">
        <div className="toolbar" role="toolbar" aria-label="Workflow">
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          {workflow && <span className="version">v{workflow.version}</span>}
          <button type="button" disabled={!!busy || !!comparing}
            onClick={() => act("validate", async () => {
              await api("POST", "/workflows/validate", definition());
              setNotice("The workflow is valid");
            })}>
            Validate
          </button>
          <button type="button" disabled={!!busy || !!comparing} onClick={() => act("save", async () => void (await save()))}>
            {busy === "save" ? "Saving…" : "Save"}
          </button>
          <button type="button" disabled={!!busy || !!comparing}
            onClick={() => act("run", async () => {
              const saved = await save();
              const run = await api<Run>("POST", `/workflows/${saved.id}/execute`, {});
              navigate(`/runs/${run.id}`);
            })}>
            {busy === "run" ? "Starting…" : "Save and run"}
          </button>
          <button type="button" onClick={async () => {
            remember();
            setNodes(await autoLayout(graph.current.nodes, graph.current.edges));
            setFitTick((t) => t + 1);
          }}>
            Auto-layout
          </button>
          <button type="button" onClick={() => flow.fitView({ padding: 0.2 })}>Fit</button>
          <button type="button" onClick={undo} title="Ctrl+Z">Undo</button>
          <button type="button" onClick={redo} title="Ctrl+Shift+Z">Redo</button>
          <button type="button" onClick={() => download(`${name}.json`, definition())}>Export</button>
          <label className="file">
            Import
            <input type="file" accept="application/json,.json" onChange={async (e) => {
              const file = e.target.files?.[0];
              if (!file) return;
              try {
                remember();
                await load(JSON.parse(await file.text()) as Definition, plugins);
              } catch (err) {
                setError(err);
              }
            }} />
          </label>
        </div>
        {comparing && (
          <div className="comparing" role="status">
            Comparing version {comparing.from} with {comparing.to}: added, removed and changed
            nodes are marked
            {comparing.moved
              ? `; ${comparing.moved} ${comparing.moved === 1 ? "node" : "nodes"} only moved (not marked)`
              : ""}
            .{" "}
            <button type="button" onClick={stopComparing}>Back to editing</button>
          </div>
        )}
        <div className="status-line" aria-live="polite">
          {notice && <span className="notice" data-testid="notice">{notice}</span>}
          <ErrorBox error={error} />
        </div>
        <div
          className="canvas"
          data-testid="canvas"
          data-layouts={fitTick}
          onDragOver={(event) => {
            event.preventDefault();
            event.dataTransfer.dropEffect = "move";
          }}
          onDrop={(event) => {
            event.preventDefault();
            const plugin = palette.find((p) => p.name === event.dataTransfer.getData(DRAG_TYPE));
            if (plugin) {
              addNode(plugin, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
            }
          }}
        >
          <ReactFlow
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            nodesConnectable={!comparing}
            colorMode="system"
            // Big graphs render only what is in view: 1,000 nodes otherwise cost every frame.
            onlyRenderVisibleElements={nodes.length > LARGE}
            onNodesChange={onNodesChange}
            onEdgesChange={onEdgesChange}
            onConnect={onConnect}
            onNodeDragStart={remember}
            isValidConnection={isValidConnection}
            onConnectEnd={() => undefined}
            deleteKeyCode={["Delete", "Backspace"]}
            multiSelectionKeyCode={["Shift", "Meta", "Control"]}
            defaultViewport={{ x: 0, y: 0, zoom: 1 }}
          >
            <Background />
            <Controls />
            {settled && <MiniMap pannable zoomable />}
          </ReactFlow>
        </div>
      </section>
      <aside className="inspector" aria-label="Selected node">
        {selected.length === 1 && selected[0] ? (
          <ConfigPanel
            key={selected[0].id}
            spec={selected[0].data.spec}
            plugin={selected[0].data.plugin}
            onChange={changeSpec}
          />
        ) : (
          <p className="muted">
            {selected.length > 1 ? `${selected.length} nodes selected` : "Select a node to configure it."}
          </p>
        )}
        {workflow && workflow.version > 1 && (
          <Versions latest={workflow.version} onCompare={compare} />
        )}
        {workflow && <RunHistory workflowId={workflow.id} />}
      </aside>
    </main>
  );
}

/** Picks two versions of the workflow to compare on the canvas. */
function Versions({ latest, onCompare }: { latest: number; onCompare: (from: number, to: number) => void }) {
  const [from, setFrom] = useState(latest - 1);
  const [to, setTo] = useState(latest);
  const all = Array.from({ length: latest }, (_, i) => i + 1);
  return (
    <section className="versions" aria-label="Version history">
      <h3>Versions</h3>
      <label>
        From
        <select value={from} onChange={(e) => setFrom(Number(e.target.value))}>
          {all.map((v) => <option key={v} value={v}>v{v}</option>)}
        </select>
      </label>
      <label>
        To
        <select value={to} onChange={(e) => setTo(Number(e.target.value))}>
          {all.map((v) => <option key={v} value={v}>v{v}</option>)}
        </select>
      </label>
      <button type="button" onClick={() => onCompare(from, to)}>Compare</button>
    </section>
  );
}

function RunHistory({ workflowId }: { workflowId: string }) {
  const [runs, setRuns] = useState<Run[]>([]);
  useEffect(() => {
    api<Page<Run> | Run[]>("GET", `/workflows/${workflowId}/runs`)
      .then((page) => setRuns(Array.isArray(page) ? page : page.items))
      .catch(() => setRuns([]));
  }, [workflowId]);
  if (!runs.length) return null;
  return (
    <section>
      <h3>
        Runs{" "}
        <a href={`/workflows/${workflowId}/runs`} onClick={(e) => { e.preventDefault(); navigate(`/workflows/${workflowId}/runs`); }}>
          all
        </a>
      </h3>
      <ul className="runs">
        {runs.slice(0, 10).map((r) => (
          <li key={r.id}>
            <a href={`/runs/${r.id}`} onClick={(e) => { e.preventDefault(); navigate(`/runs/${r.id}`); }}>
              {new Date(r.created_at).toLocaleString()}
            </a>{" "}
            <span className={`badge status-${r.status}`}>{r.status}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function download(file: string, value: unknown) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(value, null, 2)], { type: "application/json" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = file;
  a.click();
  URL.revokeObjectURL(url);
}
