import { Suspense, lazy, useEffect, useState } from "react";
import { refresh, setSignedOutHandler, signOut } from "./api/client";
import type { User } from "./api/types";
import { Link, match, navigate, usePath } from "./router";
import { SignIn } from "./SignIn";
import { WorkflowList } from "./designer/WorkflowList";
import { RunList } from "./runs/RunList";
import { Workspaces } from "./workspaces/Workspaces";

// The designer and the runs view carry the graph canvas: loaded when first opened.
const Designer = lazy(() => import("./designer/Designer"));
const RunView = lazy(() => import("./runs/RunView"));

export function App() {
  const [user, setUser] = useState<User | null>(null);
  const [checked, setChecked] = useState(false);
  const path = usePath();

  useEffect(() => {
    setSignedOutHandler(() => setUser(null));
    // A reload: the token was only in memory, the refresh cookie brings a new one.
    refresh()
      .then((session) => setUser(session.user))
      .catch(() => setUser(null))
      .finally(() => setChecked(true));
  }, []);

  if (!checked) return <main className="loading" aria-busy="true">Loading…</main>;
  if (!user) {
    return (
      <SignIn
        onSignedIn={(u) => {
          setUser(u);
          if (path === "/sign-in") navigate("/");
        }}
      />
    );
  }
  return (
    <div className="shell">
      <header>
        <nav aria-label="Main">
          <span className="brand">Weft</span>
          <Link to="/workflows">Workflows</Link>
          <Link to="/workspaces">Workspaces</Link>
        </nav>
        <div className="who">
          <span>{user.name}</span>
          <button
            type="button"
            onClick={async () => {
              await signOut();
              setUser(null);
              navigate("/sign-in");
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <Suspense fallback={<main className="loading" aria-busy="true">Loading…</main>}>
        <Page path={path} />
      </Suspense>
    </div>
  );
}

function Page({ path }: { path: string }) {
  let params;
  if ((params = match("/workflows/new", path))) return <Designer workflowId={null} />;
  if ((params = match("/workflows/:id/runs", path))) return <RunList workflowId={params.id ?? ""} />;
  if ((params = match("/workflows/:id", path))) return <Designer workflowId={params.id ?? null} />;
  if ((params = match("/runs/:id", path))) return <RunView key={params.id} runId={params.id ?? ""} />;
  if (match("/workspaces", path)) return <Workspaces />;
  return <WorkflowList />;
}
