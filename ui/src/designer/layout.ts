// Automatic layout with elkjs (layered, left to right) in a Web Worker: elk is large (1.4 MB)
// and its first layout in a page is slow while its code warms up, so the worker is started
// ahead (`warmLayout`, when the designer opens) and lays graphs out without blocking the page.
// A saved workflow keeps its positions (see `fromDefinition`) and needs no layout to open.

import { type Edge, Position, type Viewport, type XYPosition, getViewportForBounds } from "@xyflow/react";
import type { ELK as ElkApi } from "elkjs/lib/elk-api";
import elkWorker from "elkjs/lib/elk-worker.min.js?url";
import type { DesignNode } from "./graph";

const WIDTH = 200;
const HEIGHT = 90;
/** Past this many nodes the layout trades some placement quality for time. */
export const LARGE = 200;
const OPTIONS = {
  "elk.algorithm": "layered",
  "elk.direction": "RIGHT",
  "elk.spacing.nodeNode": "40",
  "elk.layered.spacing.nodeNodeBetweenLayers": "80",
};
/** For large graphs (measured on 1,000 nodes in Chromium, elk warm: 500-1,100 ms with only
 * the first two, 250-500 ms with all): layers by longest path (linear) instead of network
 * simplex; one sweep of crossing minimisation without the greedy switch; simple placement; and
 * polyline edge routes, the cheapest, since the canvas draws its own edges anyway. */
const FAST = {
  "elk.layered.thoroughness": "1",
  "elk.layered.nodePlacement.strategy": "SIMPLE",
  "elk.layered.layering.strategy": "LONGEST_PATH",
  "elk.layered.crossingMinimization.greedySwitch.type": "OFF",
  "elk.edgeRouting": "POLYLINE",
};
/** Nodes of the graph laid out to warm elk up: its first large layout in a page is slow while
 * its code is compiled (the first of 1,000 nodes took 600-900 ms after a 2-node warm-up,
 * 400-600 ms after this one). */
const WARM_NODES = 300;

let engine: Promise<ElkApi> | null = null;

/** elk in its worker, started once. */
function elk(): Promise<ElkApi> {
  engine ??= import("elkjs/lib/elk-api.js").then(
    ({ default: ELK }) => new ELK({ workerUrl: elkWorker, algorithms: ["layered"] }),
  );
  return engine;
}

/** A big graph's layout made ahead by `warmLayout`, for the graph of `key`: an auto-layout of
 * that same graph (same nodes, sizes and edges) waits only for what is left of it. On 1,000
 * nodes elk takes about a second even warm; made while the person looks at the graph, the
 * layout is often ready when they ask for it. */
let ahead: { key: string; laid: Promise<Map<string, XYPosition>> } | null = null;

let warmed = false;

/** Starts elk's worker and gets it ready for an auto-layout of `nodes` and `edges`, the graph
 * just drawn: a big graph is laid out ahead (see `autoLayout`); otherwise a made-up graph is
 * laid out (once a page), so that a later layout finds elk's code loaded and compiled. */
export function warmLayout(nodes: DesignNode[], edges: Edge[]): void {
  const key = nodes.length > LARGE ? graphKey(nodes, edges) : null;
  if (key !== null && key !== ahead?.key) {
    ahead = { key, laid: positions(nodes, edges) };
    ahead.laid.catch(() => undefined);
  }
  if (warmed) return;
  warmed = true;
  if (ahead) return;
  // A tree with three children a node: layers, crossings and placement all have work to do.
  const ids = Array.from({ length: WARM_NODES }, (_, i) => `n${i}`);
  void elk().then((e) =>
    e.layout({
      id: "warm",
      layoutOptions: { ...OPTIONS, ...FAST },
      children: ids.map((id) => ({ id, width: WIDTH, height: HEIGHT })),
      edges: ids.slice(1).map((id, i) => ({ id: `e${i}`, sources: [`n${Math.floor(i / 3)}`], targets: [id] })),
    }),
  );
}

/** What elk's layout depends on: the nodes, their sizes and the edges. */
function graphKey(nodes: DesignNode[], edges: Edge[]): string {
  const sized = nodes.map((n) => `${n.id}:${n.measured?.width ?? WIDTH}x${n.measured?.height ?? HEIGHT}`);
  return `${sized.join(",")}|${edges.map((e) => `${e.source}>${e.target}`).join(",")}`;
}

/** Each node's position in elk's layered layout of the graph, made in elk's worker. */
async function positions(nodes: DesignNode[], edges: Edge[]): Promise<Map<string, XYPosition>> {
  const graph = await (await elk()).layout({
    id: "root",
    layoutOptions: { ...OPTIONS, ...(nodes.length > LARGE ? FAST : {}) },
    children: nodes.map((n) => ({
      id: n.id,
      width: n.measured?.width ?? WIDTH,
      height: n.measured?.height ?? HEIGHT,
    })),
    edges: edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target] })),
  });
  return new Map((graph.children ?? []).map((c) => [c.id, { x: c.x ?? 0, y: c.y ?? 0 }]));
}

export async function autoLayout(nodes: DesignNode[], edges: Edge[]): Promise<DesignNode[]> {
  const made = ahead && ahead.key === graphKey(nodes, edges) ? ahead.laid : null;
  const at = await (made ?? positions(nodes, edges));
  return nodes.map((n) => ({ ...n, position: at.get(n.id) ?? n.position }));
}

/** The viewport showing every node in a `width` x `height` canvas (padding 20%, zoom 0.5-2,
 * as the canvas's fit does), from the nodes' positions and their usual size: set before a big
 * graph is first drawn, so it is drawn once where it will be seen rather than at the origin
 * first and again once fitted (on 1,000 nodes that second drawing took 300-400 ms). */
export function fittedViewport(nodes: DesignNode[], width: number, height: number): Viewport {
  if (!nodes.length || width <= 0 || height <= 0) return { x: 0, y: 0, zoom: 1 };
  let [left, top, right, bottom] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const { position } of nodes) {
    left = Math.min(left, position.x);
    top = Math.min(top, position.y);
    right = Math.max(right, position.x + WIDTH);
    bottom = Math.max(bottom, position.y + HEIGHT);
  }
  const bounds = { x: left, y: top, width: right - left, height: bottom - top };
  return getViewportForBounds(bounds, width, height, 0.5, 2, 0.2);
}

/** Sizes on the canvas (styles.css, `.plugin-node`, measured in Chromium): a node's usual
 * width, its border, the title row's height, the ports' padding and one port's row. */
const DRAWN_WIDTH = 180;
const BORDER = 1;
const TITLE = 24;
const PORTS_PAD = 4;
const PORT_ROW = 19;

/** `nodes` with their size and handles as the canvas will draw them (estimated from the
 * styles), for big graphs: the canvas draws every node it has not measured yet, so without
 * these opening 1,000 nodes drew all of them once only to drop all but those in view. A
 * node's estimate goes once it is measured (see `measuredAsDrawn`). */
export function withEstimatedSizes(nodes: DesignNode[]): DesignNode[] {
  return nodes.map((n) => {
    const inputs = n.data.plugin?.description.inputs ?? [];
    const outputs = n.data.plugin?.description.outputs ?? [];
    const rows = Math.max(inputs.length, outputs.length);
    const handle = (type: "source" | "target", id: string, row: number) => ({
      id,
      type,
      position: type === "target" ? Position.Left : Position.Right,
      // A handle (6 x 6) is centred on the node's inner edge.
      x: (type === "target" ? BORDER : DRAWN_WIDTH - BORDER) - 3,
      y: TITLE + PORTS_PAD + row * PORT_ROW + PORT_ROW / 2 - 3,
      width: 6,
      height: 6,
    });
    return {
      ...n,
      initialWidth: DRAWN_WIDTH,
      initialHeight: TITLE + 2 * PORTS_PAD + rows * PORT_ROW,
      handles: [
        ...inputs.map((p, i) => handle("target", p.name, i)),
        ...outputs.map((p, i) => handle("source", p.name, i)),
      ],
    };
  });
}

/** `nodes` after the canvas measured those named in `measured`: their estimated handles
 * dropped, so the canvas keeps the handles it measured. */
export function measuredAsDrawn(nodes: DesignNode[], measured: Set<string>): DesignNode[] {
  if (!measured.size) return nodes;
  return nodes.map((n) => {
    if (!n.handles || !measured.has(n.id)) return n;
    const { handles: _estimated, ...rest } = n;
    return rest;
  });
}

/** A layered layout without elk, linear in the graph's size: each node in the column of its
 * longest path from a source, stacked in the order met. For opening big workflows saved without
 * positions: it takes milliseconds. */
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
