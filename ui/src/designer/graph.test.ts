import { describe, expect, it } from "vitest";
import type { Edge } from "@xyflow/react";
import type { PluginVersion, Port } from "../api/types";
import {
  type DesignNode,
  diffDefinitions,
  diffGraph,
  fits,
  freshId,
  fromDefinition,
  newestNodes,
  refusal,
  toDefinition,
} from "./graph";
import { History } from "./history";
import { fittedViewport, measuredAsDrawn, quickLayout, withEstimatedSizes } from "./layout";

function plugin(name: string, inputs: Port[], outputs: Port[], version = "0.1.0"): PluginVersion {
  return {
    name,
    version,
    kind: "node",
    builtin: true,
    description: { name, version, summary: "", inputs, outputs, config_schema: {}, capabilities: [] },
  };
}
const p = (name: string, kind: Port["kind"]): Port => ({ name, kind, summary: "", optional: false });
const fibo = plugin("fibo", [p("n", "integer")], [p("out", "integer")]);
const math = plugin("math", [p("in", "array"), p("a", "number")], [p("out", "number")]);

function node(id: string, pl: PluginVersion): DesignNode {
  return { id, type: "plugin", position: { x: 0, y: 0 }, data: { spec: { id, type: pl.name, config: {} }, plugin: pl, faults: [] } };
}
const nodes = [node("f", fibo), node("m", math), node("g", fibo)];
const edge = (source: string, sourceHandle: string, target: string, targetHandle: string): Edge =>
  ({ id: `${source}-${target}-${targetHandle}`, source, sourceHandle, target, targetHandle });

describe("connections", () => {
  it("follow the host's kind rules", () => {
    expect(fits("integer", "number")).toBe(true);
    expect(fits("number", "integer")).toBe(false);
    expect(fits("any", "string")).toBe(true);
    expect(fits("any", "bytes")).toBe(false);
    expect(fits("bytes", "any")).toBe(true);
  });

  it("refuse a port of the wrong kind, naming both", () => {
    const c = { source: "f", sourceHandle: "out", target: "m", targetHandle: "in" };
    expect(refusal(c, nodes, [])).toBe("output 'out' (integer) cannot feed input 'in' (array)");
    expect(refusal({ ...c, targetHandle: "a" }, nodes, [])).toBeNull();
  });

  it("refuse a second edge into one input", () => {
    const edges = [edge("f", "out", "m", "a")];
    expect(refusal({ source: "g", sourceHandle: "out", target: "m", targetHandle: "a" }, nodes, edges))
      .toMatch(/already fed/);
  });

  it("refuse a cycle and a self-loop", () => {
    const edges = [edge("f", "out", "m", "a"), edge("m", "out", "g", "n")];
    expect(refusal({ source: "g", sourceHandle: "out", target: "f", targetHandle: "n" }, nodes, edges))
      .toMatch(/cycle/);
    expect(refusal({ source: "f", sourceHandle: "out", target: "f", targetHandle: "n" }, nodes, []))
      .toMatch(/itself/);
  });
});

describe("definitions", () => {
  it("round-trip through the canvas, positions included", () => {
    const definition = {
      name: "w",
      nodes: [{ id: "f", type: "fibo", config: { n: 3 } }, { id: "m", type: "math@0.1.0", config: {} }],
      edges: [{ source: "f", target: "m", source_port: "out", target_port: "a" }, { source: "f", target: "m" }],
      ui: { positions: { f: { x: 10, y: -20 }, m: { x: 300, y: 40 } } },
    };
    const { nodes, edges, placed } = fromDefinition(definition, [fibo, math]);
    expect(placed).toBe(true);
    expect(nodes[1]?.data.plugin).toBe(math);
    expect(nodes[1]?.position).toEqual({ x: 300, y: 40 });
    expect(toDefinition("w", nodes, edges)).toEqual(definition);
  });

  it("save whole positions, and say when a node has none", () => {
    const moved = { ...node("f", fibo), position: { x: 10.4, y: 20.6 } };
    expect(toDefinition("w", [moved], []).ui).toEqual({ positions: { f: { x: 10, y: 21 } } });
    const partly = fromDefinition(
      { name: "w", nodes: [{ id: "f", type: "fibo", config: {} }, { id: "g", type: "fibo", config: {} }],
        edges: [], ui: { positions: { f: { x: 1, y: 2 } } } },
      [fibo],
    );
    expect(partly.placed).toBe(false);
    expect(fromDefinition({ name: "w", nodes: [], edges: [] }, []).placed).toBe(true);
  });

  it("take fresh ids and the newest plugin versions", () => {
    expect(freshId("csv", ["csv", "csv-2"])).toBe("csv-3");
    expect(freshId("csv", [])).toBe("csv");
    const newer = plugin("fibo", [], [], "0.10.0");
    expect(newestNodes([fibo, newer, math]).map((x) => `${x.name}@${x.version}`))
      .toEqual(["fibo@0.10.0", "math@0.1.0"]);
  });
});

describe("undo", () => {
  it("goes back and forth, and a new edit forgets what was undone", () => {
    const h = new History<number>();
    h.push(1);
    h.push(2);
    expect(h.undo(3)).toBe(2);
    expect(h.undo(2)).toBe(1);
    expect(h.redo(1)).toBe(2);
    h.push(2);
    expect(h.redo(5)).toBeUndefined();
    expect(h.undo(5)).toBe(2);
  });
});

describe("version diff", () => {
  it("names added, removed and changed nodes and edges", () => {
    const a = {
      name: "w",
      nodes: [
        { id: "f", type: "fibo", config: { n: 3 } },
        { id: "gone", type: "fibo", config: {} },
        { id: "same", type: "math", config: { op: "add", b: 1 } },
      ],
      edges: [{ source: "f", target: "gone", source_port: "out", target_port: "n" }],
    };
    const b = {
      name: "w",
      nodes: [
        { id: "f", type: "fibo", config: { n: 4 } },
        { id: "same", type: "math", config: { b: 1, op: "add" } },
        { id: "new", type: "math", config: {} },
      ],
      edges: [{ source: "f", target: "new", source_port: "out", target_port: "a" }],
    };
    const diff = diffDefinitions(a, b);
    expect(Object.fromEntries(diff.nodes)).toEqual({ f: "changed", gone: "removed", new: "added" });
    expect([...diff.edges.values()].sort()).toEqual(["added", "removed"]);
  });

  it("does not mark a node that only moved, and lists it as moved", () => {
    const nodes = [{ id: "f", type: "fibo", config: {} }, { id: "g", type: "fibo", config: {} }];
    const a = { name: "w", nodes, edges: [], ui: { positions: { f: { x: 0, y: 0 }, g: { x: 0, y: 100 } } } };
    const b = { name: "w", nodes, edges: [], ui: { positions: { f: { x: 0, y: 0 }, g: { x: 250, y: 100 } } } };
    const diff = diffDefinitions(a, b);
    expect(diff.nodes.size).toBe(0);
    expect(diff.moved).toEqual(["g"]);
    const without = { name: "w", nodes: nodes.slice(0, 1), edges: [], ui: { positions: { f: { x: 5, y: 5 } } } };
    const graph = diffGraph(a, without, [fibo]);
    expect(graph.placed).toBe(true);
    // A removed node stays where the older version had it.
    expect(graph.nodes.find((n) => n.id === "g")?.position).toEqual({ x: 0, y: 100 });
    expect(graph.nodes.find((n) => n.id === "f")?.position).toEqual({ x: 5, y: 5 });
  });
});

describe("quick layout", () => {
  it("puts each node in the column of its longest path from a source", () => {
    const ns = [node("a", fibo), node("b", fibo), node("c", fibo)];
    const es = [edge("a", "out", "b", "n"), edge("b", "out", "c", "n"), edge("a", "out", "c", "x")];
    const laid = quickLayout(ns, es);
    const x = Object.fromEntries(laid.map((n) => [n.id, n.position.x]));
    expect(x.a).toBeLessThan(x.b as number);
    expect(x.b).toBeLessThan(x.c as number);
  });
});

describe("fitted viewport", () => {
  it("centres the nodes, zoomed between 0.5 and 2", () => {
    const at = (id: string, x: number, y: number) => ({ ...node(id, fibo), position: { x, y } });
    // Two nodes 1,000 units apart fit in a 1,000 x 500 canvas below zoom 1.
    const wide = fittedViewport([at("a", 0, 0), at("b", 1000, 0)], 1000, 500);
    expect(wide.zoom).toBeLessThan(1);
    expect(wide.zoom).toBeGreaterThanOrEqual(0.5);
    // A single node is shown at most twice its size, centred.
    const one = fittedViewport([at("a", 100, 100)], 1000, 500);
    expect(one.zoom).toBe(2);
    expect(one.x + (100 + 100) * one.zoom).toBeCloseTo(500);
    // Nothing to fit, or no canvas yet: the origin at zoom 1.
    expect(fittedViewport([], 1000, 500)).toEqual({ x: 0, y: 0, zoom: 1 });
    expect(fittedViewport([at("a", 5, 5)], 0, 0)).toEqual({ x: 0, y: 0, zoom: 1 });
  });
});

describe("estimated sizes of a big graph's nodes", () => {
  it("gives each node a size and a handle per port, until the canvas measured it", () => {
    const [estimated] = withEstimatedSizes([node("m", math)]);
    expect(estimated?.handles?.map((h) => `${h.type} ${h.id}`)).toEqual(["target in", "target a", "source out"]);
    // Each input below the one before it, within the node.
    const [first, second] = (estimated?.handles ?? []).map((h) => h.y);
    expect(first).toBeLessThan(second as number);
    expect(second).toBeLessThan(estimated?.initialHeight as number);
    // Measured: its estimated handles go (the canvas keeps those it measured), others stay.
    const [m, other] = measuredAsDrawn(withEstimatedSizes([node("m", math), node("o", math)]), new Set(["m"]));
    expect(m?.handles).toBeUndefined();
    expect(other?.handles).toHaveLength(3);
  });
});
