// The designer's graph rules, apart from React: which connections are allowed (the server's
// own rules, checked while drawing), and conversions between the canvas and the workflow
// definition the API stores.

import type { Edge, Node } from "@xyflow/react";
import type { Definition, EdgeSpec, NodeSpec, PluginVersion, Point, Port, ValueKind } from "../api/types";

export interface NodeData extends Record<string, unknown> {
  spec: NodeSpec;
  plugin: PluginVersion | undefined;
  /** Validation faults the server reported for this node. */
  faults: string[];
  /** The node's state in a run (the runs view). */
  status?: string;
  /** How the node differs between two compared versions. */
  change?: Change;
}

export type DesignNode = Node<NodeData, "plugin">;

/** Whether an output of kind `from` may feed an input of kind `to` (as the host decides). */
export function fits(from: ValueKind, to: ValueKind): boolean {
  return (
    from === to ||
    to === "any" ||
    (from === "integer" && to === "number") ||
    (from === "any" && to !== "bytes")
  );
}

export interface Connection {
  source: string | null;
  target: string | null;
  sourceHandle?: string | null;
  targetHandle?: string | null;
}

function port(ports: Port[] | undefined, name: string | null | undefined): Port | undefined {
  return ports?.find((p) => p.name === name);
}

/** Why `connection` may not be drawn, or null when it may. */
export function refusal(connection: Connection, nodes: DesignNode[], edges: Edge[]): string | null {
  const { source, target } = connection;
  if (!source || !target) return "connect an output to an input";
  if (source === target) return "a node cannot feed itself";
  const from = nodes.find((n) => n.id === source);
  const to = nodes.find((n) => n.id === target);
  if (!from || !to) return "both nodes must be on the canvas";
  const out = port(from.data.plugin?.description.outputs, connection.sourceHandle);
  const input = port(to.data.plugin?.description.inputs, connection.targetHandle);
  if (out && input && !fits(out.kind, input.kind)) {
    return `output '${out.name}' (${out.kind}) cannot feed input '${input.name}' (${input.kind})`;
  }
  if (
    connection.targetHandle &&
    edges.some((e) => e.target === target && e.targetHandle === connection.targetHandle)
  ) {
    return `input '${connection.targetHandle}' of '${target}' is already fed by another edge`;
  }
  if (reaches(target, source, edges)) {
    return `'${target}' already leads to '${source}': this edge would make a cycle`;
  }
  return null;
}

/** Whether `to` can be reached from `from` along `edges`. */
export function reaches(from: string, to: string, edges: Edge[]): boolean {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.source, [...(next.get(e.source) ?? []), e.target]);
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const id = stack.pop() as string;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(next.get(id) ?? []));
  }
  return false;
}

/** A node id not used yet, from the plugin's name: `csv`, `csv-2`, ... */
export function freshId(base: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}-${i}`)) return `${base}-${i}`;
}

export function edgeId(e: EdgeSpec): string {
  return `${e.source}:${e.source_port ?? ""}->${e.target}:${e.target_port ?? ""}`;
}

/** The definition the API stores for what is on the canvas, with where each node is drawn
 * (whole canvas units: positions need no more, and the definition stays small). */
export function toDefinition(name: string, nodes: DesignNode[], edges: Edge[]): Definition {
  return {
    name,
    nodes: nodes.map((n) => n.data.spec),
    edges: edges.map((e) => {
      const spec: EdgeSpec = { source: e.source, target: e.target };
      if (e.sourceHandle) spec.source_port = e.sourceHandle;
      if (e.targetHandle) spec.target_port = e.targetHandle;
      return spec;
    }),
    ui: {
      positions: Object.fromEntries(
        nodes.map((n) => [n.id, { x: Math.round(n.position.x), y: Math.round(n.position.y) }]),
      ),
    },
  };
}

/** The plugin a node's `type` names: `name` (its newest version) or `name@version`. */
export function pluginFor(type: string, plugins: PluginVersion[]): PluginVersion | undefined {
  const [name, version] = type.split("@");
  return plugins.find((p) => p.name === name && (!version || p.version === version));
}

/** The canvas for a stored definition: each node where the definition's layout puts it.
 * `placed` is false when a node has no saved position (the caller lays the graph out). */
export function fromDefinition(
  definition: Definition,
  plugins: PluginVersion[],
): { nodes: DesignNode[]; edges: Edge[]; placed: boolean } {
  const positions = definition.ui?.positions ?? {};
  let placed = true;
  const nodes = definition.nodes.map((spec, i) => {
    const saved = positions[spec.id];
    if (!saved) placed = false;
    return {
      id: spec.id,
      type: "plugin" as const,
      position: saved ? { x: saved.x, y: saved.y } : { x: 0, y: i * 120 },
      data: { spec, plugin: pluginFor(spec.type, plugins), faults: [] },
    };
  });
  const edges = definition.edges.map((e) => ({
    id: edgeId(e),
    source: e.source,
    target: e.target,
    sourceHandle: e.source_port ?? null,
    targetHandle: e.target_port ?? null,
  }));
  return { nodes, edges, placed };
}

/** The newest version of each node plugin, by name. */
export function newestNodes(all: PluginVersion[]): PluginVersion[] {
  const newest = new Map<string, PluginVersion>();
  for (const p of all) {
    if (p.kind !== "node") continue;
    const seen = newest.get(p.name);
    if (!seen || seen.version.localeCompare(p.version, undefined, { numeric: true }) < 0) {
      newest.set(p.name, p);
    }
  }
  return [...newest.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export type Change = "added" | "removed" | "changed";

/** What changed from definition `a` to `b`: nodes by id (a changed type, config or policy),
 * edges by their ports. A node only moved on the canvas is not marked: positions are layout,
 * not behaviour; `moved` lists those nodes, for the page to say so. */
export function diffDefinitions(
  a: Definition,
  b: Definition,
): { nodes: Map<string, Change>; edges: Map<string, Change>; moved: string[] } {
  const nodes = new Map<string, Change>();
  const moved: string[] = [];
  const before = new Map(a.nodes.map((n) => [n.id, n]));
  const after = new Map(b.nodes.map((n) => [n.id, n]));
  for (const [id, node] of after) {
    const old = before.get(id);
    if (!old) nodes.set(id, "added");
    else if (canonical(old) !== canonical(node)) nodes.set(id, "changed");
    else if (!samePoint(a.ui?.positions?.[id], b.ui?.positions?.[id])) moved.push(id);
  }
  for (const id of before.keys()) if (!after.has(id)) nodes.set(id, "removed");
  const edges = new Map<string, Change>();
  const oldEdges = new Set(a.edges.map(edgeId));
  const newEdges = new Set(b.edges.map(edgeId));
  for (const id of newEdges) if (!oldEdges.has(id)) edges.set(id, "added");
  for (const id of oldEdges) if (!newEdges.has(id)) edges.set(id, "removed");
  return { nodes, edges, moved };
}

function samePoint(p?: Point, q?: Point): boolean {
  return p?.x === q?.x && p?.y === q?.y;
}

/** JSON with object keys sorted, so equal values compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => x.localeCompare(y)))
      : v,
  );
}

/** Both versions on one canvas: every node and edge of either, marked with its change, each
 * node where `b` puts it (a removed one where `a` had it); `placed` as in [`fromDefinition`]. */
export function diffGraph(
  a: Definition,
  b: Definition,
  plugins: PluginVersion[],
): { nodes: DesignNode[]; edges: Edge[]; placed: boolean; moved: string[] } {
  const { nodes: nodeChanges, edges: edgeChanges, moved } = diffDefinitions(a, b);
  const removed = a.nodes.filter((n) => nodeChanges.get(n.id) === "removed");
  const union: Definition = {
    name: b.name,
    nodes: [...b.nodes, ...removed],
    edges: [...b.edges, ...a.edges.filter((e) => edgeChanges.get(edgeId(e)) === "removed")],
    ui: { positions: { ...a.ui?.positions, ...b.ui?.positions } },
  };
  const graph = fromDefinition(union, plugins);
  return {
    placed: graph.placed,
    moved,
    nodes: graph.nodes.map((n) => {
      const change = nodeChanges.get(n.id);
      return change ? { ...n, data: { ...n.data, change } } : n;
    }),
    edges: graph.edges.map((e) => {
      const change = edgeChanges.get(e.id);
      return change ? { ...e, className: `diff-${change}`, label: change } : e;
    }),
  };
}
