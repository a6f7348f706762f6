import { ApiError } from "../api/client";

/** An API error's message and hint, or any other error's message: never a blank screen. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof ApiError ? error.hint : null;
  const code = error instanceof ApiError ? error.code : null;
  return (
    <div className="error" role="alert">
      <strong>{message}</strong>
      {code && <span className="code"> ({code})</span>}
      {hint && <div className="hint">{hint}</div>}
    </div>
  );
}
