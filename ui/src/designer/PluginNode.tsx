import { Handle, Position, type NodeProps } from "@xyflow/react";
import type { DesignNode } from "./graph";

/** A node on the canvas: its id, plugin, typed ports as handles, faults and run state. */
export function PluginNode({ data, selected }: NodeProps<DesignNode>) {
  const inputs = data.plugin?.description.inputs ?? [];
  const outputs = data.plugin?.description.outputs ?? [];
  const classes = ["plugin-node"];
  if (selected) classes.push("selected");
  if (data.faults.length) classes.push("faulty");
  if (data.status) classes.push(`status-${data.status}`);
  if (data.change) classes.push(`diff-${data.change}`);
  return (
    <div className={classes.join(" ")} data-testid={`node-${data.spec.id}`} data-status={data.status} data-change={data.change}>
      <div className="title">
        <strong>{data.spec.id}</strong>
        <span className="type">{data.spec.type}</span>
      </div>
      {data.status && <div className="state">{data.status}</div>}
      {data.change && <div className="state">{data.change}</div>}
      <div className="ports">
        <div className="side">
          {inputs.map((p) => (
            <div key={p.name} className="port in">
              <Handle type="target" position={Position.Left} id={p.name}
                title={`${p.name}: ${p.kind}`} data-testid={`in-${data.spec.id}-${p.name}`} />
              <span>{p.name} <small>{p.kind}</small></span>
            </div>
          ))}
        </div>
        <div className="side">
          {outputs.map((p) => (
            <div key={p.name} className="port out">
              <span>{p.name} <small>{p.kind}</small></span>
              <Handle type="source" position={Position.Right} id={p.name}
                title={`${p.name}: ${p.kind}`} data-testid={`out-${data.spec.id}-${p.name}`} />
            </div>
          ))}
        </div>
      </div>
      {data.faults.map((f) => (
        <div key={f} className="fault" role="note">{f}</div>
      ))}
    </div>
  );
}
