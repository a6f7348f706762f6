// Automatic layout with elkjs (layered, left to right), loaded on first use: it is large and
// only the designer needs it.

import type { Edge } from "@xyflow/react";
import type { DesignNode } from "./graph";

const WIDTH = 200;
const HEIGHT = 90;

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
