// A person using Weft's web app in headless Chromium (Debian's), with real mouse drags, in one
// of five flows, each its own test in tests/e2e/browser.rs:
// - sign-in: a wrong password is refused; signs in; a reload keeps the sign-in (the refresh
//   cookie), signing out ends it.
// - design: builds a 3-node workflow from the palette (fibo -> math -> template), sees a
//   connection of the wrong kind refused while drawing, connects the ports, undoes and redoes,
//   fills the config forms (an out-of-range value shows its error inline), saves and runs it
//   and watches every node turn succeeded (over the run's WebSocket, and on a timeline).
// - versions: opens the workflow ID (fibo -> math -> template, run once), saves a second
//   version and compares it with the first; lists the workflow's runs and filters them by state.
// - rerun: opens the finished run ID whose node `t` failed after `f` succeeded, and runs it
//   again from `t`.
// - attempts: opens the finished run ID and reads every attempt of its node `flaky` (state,
//   times, error and logs).
// Prints what it saw as JSON, with what the Content-Security-Policy refused on any page. Saves screenshots of the designer and the run in SHOT_DIR, or of
// a failure (web-app-FLOW-failure.png). Checks each page with axe-core (its serious and
// critical violations are printed).
//
//   node web-app.mjs FLOW BASE_URL NAME PASSWORD SHOT_DIR [ID]
// (ID, for versions, rerun and attempts, is the workflow or the run to open.)
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { audit as violations, launch, signIn } from "./app.mjs";

const [flow, base, name, password, shotDir, target] = process.argv.slice(2);
mkdirSync(shotDir, { recursive: true });

const { browser, page } = await launch();
const seen = { console_errors: [], csp_violations: [], websocket_messages: 0, a11y: {} };
page.on("pageerror", (e) => seen.console_errors.push(String(e)));
// What the Content-Security-Policy refused on any page (e.g. an eval, with no 'unsafe-eval').
await page.exposeFunction("weftCspViolation", (v) => seen.csp_violations.push(v));
await page.addInitScript(() =>
  document.addEventListener("securitypolicyviolation", (e) =>
    window.weftCspViolation(`${e.violatedDirective} refused ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`),
  ),
);
// The run view follows the run over its WebSocket (the token offered as a subprotocol).
page.on("websocket", (ws) => {
  if (ws.url().endsWith("/events")) ws.on("framereceived", () => seen.websocket_messages++);
});

/** The centre of what `selector` matches. */
async function centre(selector) {
  const box = await page.locator(selector).first().boundingBox();
  if (!box) throw new Error(`${selector} is not visible`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

/** Presses the mouse on `from`, moves it in steps to `to` (points), releases it there. */
async function drag(from, to) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 8 });
  await page.mouse.move(to.x, to.y, { steps: 8 });
  await page.mouse.up();
}

/** axe-core's serious and critical violations on the page as it is, under `seen.a11y[name]`. */
async function audit(name) {
  seen.a11y[name] = await violations(page);
}

async function edges() {
  return page.locator(".react-flow__edge").count();
}

/** Waits until the run shown has finished. */
async function runFinished() {
  await page.locator('[data-testid="run-status"]:text-matches("succeeded|failed|cancelled")').waitFor();
}

const flows = {
  async "sign-in"() {
    await page.goto(base);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await audit("sign-in");
    await page.getByLabel("Name").fill(name);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    seen.wrong_password = await page.getByRole("alert").innerText();

    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("link", { name: "New workflow" }).waitFor();
    await audit("workflows");

    // A reload keeps the sign-in; signing out ends it, and a reload after that does not undo it.
    await page.reload();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    seen.signed_in_after_reload = true;
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await page.reload();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    seen.signed_out_after_reload = true;
  },

  async design() {
    await signIn(page, base, name, password);
    await page.getByRole("link", { name: "New workflow" }).click();
    await page.getByTestId("palette-fibo").waitFor();

    // Three nodes dragged from the palette onto the canvas.
    const canvas = await page.getByTestId("canvas").boundingBox();
    const at = (dx, dy) => ({ x: canvas.x + dx, y: canvas.y + dy });
    await drag(await centre('[data-testid="palette-fibo"]'), at(40, 100));
    await drag(await centre('[data-testid="palette-math"]'), at(300, 220));
    await drag(await centre('[data-testid="palette-template"]'), at(560, 100));
    for (const id of ["fibo", "math", "template"]) await page.getByTestId(`node-${id}`).waitFor();
    seen.nodes_dropped = await page.locator(".react-flow__node").count();

    // fibo's integer output into math's array input: refused while drawing, with the reason.
    await drag(await centre('[data-testid="out-fibo-out"]'), await centre('[data-testid="in-math-in"]'));
    seen.refused = await page.getByTestId("notice").innerText();
    seen.edges_after_refusal = await edges();

    await drag(await centre('[data-testid="out-fibo-out"]'), await centre('[data-testid="in-math-a"]'));
    await drag(await centre('[data-testid="out-math-out"]'), await centre('[data-testid="in-template-in"]'));
    seen.edges_connected = await edges();
    await page.locator(".react-flow__pane").click({ position: { x: 5, y: 5 } });
    await page.keyboard.press("Control+z");
    seen.edges_after_undo = await edges();
    await page.keyboard.press("Control+Shift+z");
    seen.edges_after_redo = await edges();

    // The config forms, generated from each plugin's JSON Schema.
    await page.getByTestId("node-fibo").locator(".title").click();
    await page.locator("#root_n").fill("100");
    seen.inline_error = await page.locator(".config .error-detail, .config .text-danger").first().innerText();
    await page.locator("#root_n").fill("10");
    await page.getByTestId("node-math").locator(".title").click();
    await page.locator("#root_op").selectOption("add");
    await page.locator("#root_b").fill("1");
    await page.getByTestId("node-template").locator(".title").click();
    await page.locator("#root_template").fill("fib(10) + 1 = {{ input }}");
    await page.getByRole("button", { name: "Auto-layout" }).click();
    await page.locator('[data-testid="canvas"][data-layouts="1"]').waitFor();
    // Two frames: the laid-out nodes render, then the view fits them.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.getByTestId("node-fibo").locator(".title").click();
    await page.screenshot({ path: join(shotDir, "designer.png") });
    await audit("designer");

    await page.getByRole("button", { name: "Save and run" }).click();
    await page.waitForURL(/\/runs\//);
    await runFinished();
    seen.run_status = await page.getByTestId("run-status").innerText();
    await page.locator('[data-testid="node-template"][data-status]').waitFor();
    seen.node_states = {};
    for (const id of ["fibo", "math", "template"]) {
      seen.node_states[id] = await page.getByTestId(`node-${id}`).getAttribute("data-status");
    }
    await page.getByRole("button", { name: "template" }).click();
    seen.template_output = await page.locator(".node-detail pre").nth(1).innerText();
    await page.screenshot({ path: join(shotDir, "run.png") });
    await audit("run");
    seen.timeline_bars = await page.locator(".timeline .bar").count();
  },

  async versions() {
    await signIn(page, base, name, password);
    // A second version (fibo's n changed), compared with the first on the canvas.
    await page.goto(new URL(`/workflows/${target}`, base).href);
    await page.getByTestId("node-fibo").locator(".title").click();
    await page.locator("#root_n").fill("12");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByText("Saved version 2").waitFor();
    await page.getByRole("button", { name: "Compare" }).click();
    await page.locator('[data-testid="node-fibo"][data-change]').waitFor();
    seen.diff = {};
    for (const id of ["fibo", "math", "template"]) {
      seen.diff[id] = await page.getByTestId(`node-${id}`).getAttribute("data-change");
    }
    await page.getByRole("button", { name: "Back to editing" }).click();

    // The workflow's runs, filtered by state.
    await page.getByRole("link", { name: "all" }).click();
    await page.locator("main table tbody tr").first().waitFor();
    seen.runs_listed = await page.locator("main table tbody tr").count();
    await audit("runs");
    await page.getByLabel("State").selectOption("failed");
    seen.runs_failed_listed = await page.locator("main table tbody tr").count();
    await page.getByRole("link", { name: "Workspaces" }).click();
    await page.getByRole("heading", { name: "Workspaces" }).waitFor();
    await audit("workspaces");
  },

  async rerun() {
    await signIn(page, base, name, password);
    await page.goto(new URL(`/runs/${target}`, base).href);
    await page.locator('[data-testid="run-status"]', { hasText: "failed" }).waitFor();
    await page.getByRole("button", { name: "t", exact: true }).click();
    await page.getByRole("button", { name: "Re-run from t" }).click();
    await page.waitForURL((url) => url.pathname.startsWith("/runs/") && !url.pathname.endsWith(target));
    await runFinished();
    await page.locator('[data-testid="node-t"][data-status="failed"]').waitFor();
    seen.rerun = {
      run: new URL(page.url()).pathname.split("/").pop(),
      f: await page.getByTestId("node-f").getAttribute("data-status"),
      t: await page.getByTestId("node-t").getAttribute("data-status"),
    };
  },

  async attempts() {
    await signIn(page, base, name, password);
    await page.goto(new URL(`/runs/${target}`, base).href);
    await runFinished();
    await page.getByRole("button", { name: "flaky", exact: true }).click();
    const list = page.getByRole("list", { name: "Attempts of flaky" });
    await list.waitFor();
    seen.attempts = [];
    for (const item of await list.getByRole("listitem").all()) {
      seen.attempts.push({
        status: await item.getAttribute("data-status"),
        head: (await item.locator(".attempt-head").innerText()).replace(/\s+/g, " "),
        error: (await item.locator(".error").count()) ? await item.locator(".error").innerText() : null,
        logs: await item.locator(".logs").innerText(),
      });
    }
    await audit("run");
  },
};

try {
  if (!Object.hasOwn(flows, flow)) throw new Error(`unknown flow ${flow}: one of ${Object.keys(flows).join(", ")}`);
  await flows[flow]();
  console.log(JSON.stringify(seen));
} catch (error) {
  const shot = join(shotDir, `web-app-${flow}-failure.png`);
  await page.screenshot({ path: shot }).catch(() => {});
  console.error(`${error.stack}\nscreenshot: ${shot}\nseen: ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
