// Automatic layout with elkjs (layered, left to right), loaded on first use: it is large and
// only the designer needs it.

import type { Edge } from "@xyflow/react";
import type { DesignNode } from "./graph";

const WIDTH = 200;
const HEIGHT = 90;
/** Past this many nodes the layout trades some crossing and placement quality for time: on
 * 1,000 nodes elk's defaults took 1.7 s (a chain) to 2.2 s (a fan), these options half that. */
export const LARGE = 200;
const FAST = {
  "elk.layered.thoroughness": "1",
  "elk.layered.nodePlacement.strategy": "SIMPLE",
};

export async function autoLayout(nodes: DesignNode[], edges: Edge[]): Promise<DesignNode[]> {
  const { default: ELK } = await import("elkjs/lib/elk.bundled.js");
  const elk = new ELK();
  const graph = await elk.layout({
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "RIGHT",
      "elk.spacing.nodeNode": "40",
      "elk.layered.spacing.nodeNodeBetweenLayers": "80",
      ...(nodes.length > LARGE ? FAST : {}),
    },
    children: nodes.map((n) => ({
      id: n.id,
      width: n.measured?.width ?? WIDTH,
      height: n.measured?.height ?? HEIGHT,
    })),
    edges: edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target] })),
  });
  const at = new Map((graph.children ?? []).map((c) => [c.id, { x: c.x ?? 0, y: c.y ?? 0 }]));
  return nodes.map((n) => ({ ...n, position: at.get(n.id) ?? n.position }));
}

/** A layered layout without elk, linear in the graph's size: each node in the column of its
 * longest path from a source, stacked in the order met. For opening big workflows: elk's first
 * run in a page (a cold JIT) took 3 s on 1,000 nodes, this takes milliseconds. */
export function quickLayout(nodes: DesignNode[], edges: Edge[]): DesignNode[] {
  const incoming = new Map<string, number>(nodes.map((n) => [n.id, 0]));
  const next = new Map<string, string[]>();
  for (const e of edges) {
    incoming.set(e.target, (incoming.get(e.target) ?? 0) + 1);
    next.set(e.source, [...(next.get(e.source) ?? []), e.target]);
  }
  const layer = new Map<string, number>();
  const queue = nodes.filter((n) => incoming.get(n.id) === 0).map((n) => n.id);
  for (const id of queue) layer.set(id, 0);
  while (queue.length) {
    const id = queue.shift() as string;
    for (const to of next.get(id) ?? []) {
      layer.set(to, Math.max(layer.get(to) ?? 0, (layer.get(id) ?? 0) + 1));
      const left = (incoming.get(to) ?? 1) - 1;
      incoming.set(to, left);
      if (left === 0) queue.push(to);
    }
  }
  const rows = new Map<number, number>();
  return nodes.map((n) => {
    const column = layer.get(n.id) ?? 0;
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    return { ...n, position: { x: column * (WIDTH + 80), y: row * (HEIGHT + 40) } };
  });
}
