import { type ComponentType, Suspense, lazy, useEffect, useState } from "react";
import { refresh, setSignedOutHandler, signOut } from "./api/client";
import type { User } from "./api/types";
import { Link, match, navigate, usePath } from "./router";
import { SignIn } from "./SignIn";
import { WorkflowList } from "./designer/WorkflowList";
import { RunList } from "./runs/RunList";
import { Workspaces } from "./workspaces/Workspaces";

/** A page whose code is loaded when first opened (`Page`), or ahead (`preload`): a page whose
 * code is already here renders at once, without suspending. That matters on the page a reload
 * opens: its Suspense boundary is new, so suspending would show the fallback, and React then
 * holds the content back until 300 ms after the fallback appeared. */
function lazyPage<P extends object>(load: () => Promise<{ default: ComponentType<P> }>) {
  let loaded: ComponentType<P> | null = null;
  const Lazy = lazy(load);
  return {
    preload: () =>
      load().then(
        (module) => void (loaded = module.default),
        () => undefined,
      ),
    Page: (props: P) => {
      const Component = loaded ?? Lazy;
      return <Component {...props} />;
    },
  };
}

// The designer and the runs view carry the graph canvas: loaded when first opened, or, when
// a reload opens on one of them, while the sign-in is refreshed.
const designer = lazyPage(() => import("./designer/Designer"));
const runView = lazyPage(() => import("./runs/RunView"));
const Designer = designer.Page;
const RunView = runView.Page;

export function App() {
  const [user, setUser] = useState<User | null>(null);
  const [checked, setChecked] = useState(false);
  const path = usePath();

  useEffect(() => {
    setSignedOutHandler(() => setUser(null));
    const preload = match("/workflows/:id", path)
      ? designer.preload()
      : match("/runs/:id", path)
        ? runView.preload()
        : Promise.resolve();
    // A reload: the token was only in memory, the refresh cookie brings a new one.
    Promise.all([refresh(), preload])
      .then(([session]) => setUser(session.user))
      .catch(() => setUser(null))
      .finally(() => setChecked(true));
    // Once, for the page the app opened on.
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
