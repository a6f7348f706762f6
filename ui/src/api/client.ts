// The API client: every call goes to the same /api/v1 as other clients, with the short-lived
// token kept in this module's memory only (never in storage a page could read). A 401 is
// answered by one refresh through the HttpOnly cookie, then the call is tried again.

import type { ErrorBody, Session } from "./types";

/** An API error: its code, message and hint, for the page to show. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | null;
  readonly details: Record<string, unknown>;

  constructor(status: number, body: ErrorBody) {
    super(body.message);
    this.status = status;
    this.code = body.code;
    this.hint = body.hint;
    this.details = body.details ?? {};
  }
}

let token: string | null = null;
let onSignedOut: () => void = () => {};

export function setSignedOutHandler(handler: () => void): void {
  onSignedOut = handler;
}

async function parse<T>(response: Response): Promise<T> {
  const text = await response.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { code: "00000", message: text, details: {}, hint: null };
    }
  }
  if (!response.ok) {
    const error = (body ?? {
      code: String(response.status),
      message: response.statusText,
      details: {},
      hint: null,
    }) as ErrorBody;
    throw new ApiError(response.status, error);
  }
  return body as T;
}

async function authCall(path: string, body?: unknown): Promise<Session> {
  const response = await fetch(`/api/v1/auth/${path}`, {
    method: "POST",
    credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const session = await parse<Session>(response);
  token = session.token;
  return session;
}

export function signIn(name: string, password: string): Promise<Session> {
  return authCall("sign-in", { name, password });
}

/** A new token from the refresh cookie (after a reload); fails when not signed in. */
export function refresh(): Promise<Session> {
  return authCall("refresh");
}

export async function signOut(): Promise<void> {
  token = null;
  await fetch("/api/v1/auth/sign-out", { method: "POST", credentials: "same-origin" });
}

/** Calls `/api/v1{path}`; JSON in and out. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await call(
    method,
    path,
    body === undefined ? null : JSON.stringify(body),
    body === undefined ? {} : { "Content-Type": "application/json" },
  );
  return parse<T>(response);
}

/** Calls `/api/v1{path}` with raw bytes (files); an error answer is thrown as [`ApiError`]. */
export async function apiRaw(method: string, path: string, body?: Blob): Promise<Response> {
  const response = await call(method, path, body ?? null, {});
  if (!response.ok) await parse(response);
  return response;
}

/** Sends the request with the token; on a 401, refreshes the token once and sends it again. */
async function call(
  method: string,
  path: string,
  body: BodyInit | null,
  headers: Record<string, string>,
): Promise<Response> {
  const send = () =>
    fetch(`/api/v1${path}`, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
      body,
    });
  const response = await send();
  if (response.status !== 401 || !token) return response;
  try {
    await refresh();
  } catch {
    token = null;
    onSignedOut();
    return response;
  }
  return send();
}

/** A WebSocket to `/api/v1{path}`, its token offered as a subprotocol (browsers cannot set
 * headers on the handshake; the host answers with the `weft` protocol). */
export function webSocket(path: string): WebSocket {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${window.location.host}/api/v1${path}`;
  return new WebSocket(url, token ? ["weft", `weft.bearer.${token}`] : []);
}
