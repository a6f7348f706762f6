// The shapes of Weft's /api/v1 answers the app reads (see /docs for the whole API).

export interface ErrorBody {
  code: string;
  message: string;
  details: Record<string, unknown>;
  hint: string | null;
}

export interface User {
  id: string;
  name: string;
  role: "admin" | "user";
  created_at: string;
  disabled_at: string | null;
}

export interface Session {
  token: string;
  expires_at: string | null;
  user: User;
}

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

export interface Definition {
  name: string;
  description?: string;
  nodes: NodeSpec[];
  edges: EdgeSpec[];
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

export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type NodeStatus =
  | "pending" | "running" | "retrying" | "succeeded" | "failed" | "skipped" | "cancelled";

export interface NodeRecord {
  id: string;
  plugin: string;
  status: NodeStatus;
  attempts: number;
  inputs: Record<string, unknown> | null;
  outputs: Record<string, unknown> | null;
  error: { kind: string; message: string; retryable: boolean; code?: string } | null;
  logs: unknown[];
  started_at: string | null;
  finished_at: string | null;
}

export interface Run {
  id: string;
  workflow_id: string;
  workflow_version: number;
  status: RunStatus;
  error?: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  nodes?: NodeRecord[];
}

export interface Project {
  id: string;
  owner_id: string;
  name: string;
  created_at: string;
  updated_at: string;
}

export interface WorkspaceSession {
  session_id: string;
  project_id: string;
  kind: "jupyter" | "code-server";
  status: string;
  url: string;
  error: string | null;
  link?: string;
}
