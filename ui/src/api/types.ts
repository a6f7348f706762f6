// The shapes of Weft's /api/v1 answers the app reads. Where the OpenAPI document describes
// a shape, it is the type generated from it (schema.d.ts, by openapi-typescript; a test fails
// when it is stale); the shapes the document leaves open (a plugin's description, a node's
// config, validation faults) are written here.

import type { components } from "./schema";

type Schemas = components["schemas"];

export interface ErrorBody {
  code: string;
  message: string;
  details: Record<string, unknown>;
  hint: string | null;
}

export type User = Schemas["User"];

/** What signing in or refreshing answers. */
export type Session = Schemas["SignInToken"];

export type ValueKind =
  | "any" | "null" | "boolean" | "number" | "integer" | "string" | "array" | "object" | "bytes";

export interface Port {
  name: string;
  kind: ValueKind;
  summary: string;
  optional: boolean;
}

export interface NodeDescription {
  name: string;
  version: string;
  summary: string;
  inputs: Port[];
  outputs: Port[];
  config_schema: Record<string, unknown>;
  capabilities: unknown[];
}

export interface PluginVersion {
  name: string;
  version: string;
  kind: "node" | "strategy";
  builtin: boolean;
  description: NodeDescription;
}

export interface RetryPolicy {
  max_attempts: number;
  backoff?: string;
  max_backoff?: string;
}

export type OnError = "fail" | "skip_dependents" | "continue";

export interface NodeSpec {
  id: string;
  type: string;
  config: Record<string, unknown>;
  retry?: RetryPolicy;
  timeout?: string;
  on_error?: OnError;
}

export interface EdgeSpec {
  source: string;
  target: string;
  source_port?: string;
  target_port?: string;
}

export interface Point {
  x: number;
  y: number;
}

/** What the designer keeps with a definition (the engine ignores it): node id -> where the
 * node is drawn. */
export interface Layout {
  positions?: Record<string, Point>;
}

export interface Definition {
  name: string;
  description?: string;
  nodes: NodeSpec[];
  edges: EdgeSpec[];
  ui?: Layout;
}

export interface Workflow {
  id: string;
  owner_id: string;
  name: string;
  version: number;
  definition: Definition;
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** One validation fault, as `details.errors[]` of a 40401 answer. */
export interface Fault {
  path: string;
  kind: string;
  message: string;
  node?: string;
  edge?: number;
  cycle?: string[];
}

export type RunStatus = Schemas["RunStatus"];
export type NodeStatus = Schemas["NodeStatus"];

export type NodeRecord = Schemas["NodeRecord"];
/** One attempt of a node of a run (`GET /runs/{id}/nodes/{node}/attempts`). */
export type Attempt = Schemas["Attempt"];

/** A run, with its nodes when read alone (`GET /runs/{id}`). */
export type Run = Schemas["RunSummary"] & { nodes?: NodeRecord[] };

export type Project = Schemas["Project"];

export type WorkspaceSession = Schemas["Session"];
export type FileEntry = Schemas["FileEntry"];
export type Usage = Schemas["Usage"];
export type SyncReport = Schemas["SyncReport"];
export type SessionEvent = Schemas["SessionEvent"];
/** What stopping a session answers: the session and what the sync before the stop did. */
export type StoppedSession = Schemas["StoppedSession"];
