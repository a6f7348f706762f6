// A person at work in a session, in headless Chromium: opens the session's one-time link and
// waits for an interactive UI (JupyterLab's shell with the project's files / VS Code's workbench
// with the project's explorer); with `work`, then does what a student does there. Prints, as
// JSON, how long the link took to become interactive, what the page showed and every failed
// response (4xx/5xx, failed requests) seen on the way. Saves a screenshot in SHOT_DIR at the
// end of a `work` flow (KIND.png), or of a failure (KIND-failure.png, its path printed). Used by tests/e2e/browser.rs and host/benches/sessions_ui.rs.
//
//   node workspace-ui.mjs jupyter|code-server open|work LINK SHOT_DIR
//
// jupyter work: opens `hello.ipynb` from the file browser, types `6*7` in its first cell, runs
// it, waits for `42`, saves with Ctrl+S.
// code-server work: opens `notes.txt` with Quick Open (Ctrl+P), types a line, saves with Ctrl+S;
// opens a terminal and runs python3 there, which writes `terminal-out.txt`.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [kind, mode, link, shotDir] = process.argv.slice(2);
const TYPED = "typed in the browser";
const TIMEOUT = 60_000;

const browser = await chromium.launch({
  executablePath: process.env.WEFT_TEST_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--no-proxy-server"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(TIMEOUT);
const failed = [];
page.on("response", (r) => {
  // code-server's workbench asks for `vsda` (Microsoft's proprietary signing module, only in
  // their own builds) and goes on without it when it is missing.
  if (r.status() === 404 && r.url().includes("/node_modules/vsda/")) return;
  if (r.status() >= 400) failed.push({ status: r.status(), method: r.request().method(), url: r.url() });
});
page.on("requestfailed", (r) => {
  const error = r.failure()?.errorText ?? "failed";
  // A request the page itself gave up on (navigation away, a superseded fetch) is no failure.
  if (error !== "net::ERR_ABORTED") failed.push({ error, method: r.method(), url: r.url() });
});

// JupyterLab runs a cell once its kernel connection answered kernel_info (its indicators may
// show "idle" before): the flow waits for that reply on a kernel's channels.
let kernelAnswered;
const kernelReady = new Promise((resolve) => (kernelAnswered = resolve));
page.on("websocket", (ws) => {
  if (!ws.url().includes("/api/kernels/")) return;
  ws.on("framereceived", (frame) => {
    if (String(frame.payload).includes("kernel_info_reply")) kernelAnswered();
  });
});
// A WebSocket that fails to open or errors (kernels, terminals, code-server's own) is a failure.
page.on("websocket", (ws) => {
  ws.on("socketerror", (error) => failed.push({ error, websocket: ws.url() }));
});
const result = { kind, mode, failed };
let step = "open the link";
try {
  const started = performance.now();
  await page.goto(link);
  if (kind === "jupyter") {
    step = "JupyterLab's shell with the project's files";
    await page.locator(".jp-LabShell").waitFor();
    await page.locator(".jp-DirListing-item", { hasText: "hello.ipynb" }).waitFor();
  } else {
    step = "VS Code's workbench with the project's explorer";
    await page.locator(".monaco-workbench").waitFor();
    await page.locator(".explorer-folders-view .monaco-list-row", { hasText: "notes.txt" }).waitFor();
  }
  result.interactive_ms = Math.round(performance.now() - started);
  result.url = page.url();
  if (mode === "work") {
    if (kind === "jupyter") await jupyterWork();
    else await codeServerWork();
  }
  result.ok = true;
  // The last view of a flow that worked (the README shows one of each).
  if (mode === "work") {
    mkdirSync(shotDir, { recursive: true });
    await page.screenshot({ path: join(shotDir, `${kind}.png`) });
  }
} catch (e) {
  mkdirSync(shotDir, { recursive: true });
  result.screenshot = join(shotDir, `${kind}-failure.png`);
  await page.screenshot({ path: result.screenshot }).catch(() => {});
  result.ok = false;
  result.error = `${step}: ${e.message}`;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));

async function jupyterWork() {
  step = "open hello.ipynb from the file browser";
  await page.locator(".jp-DirListing-item", { hasText: "hello.ipynb" }).dblclick();
  const notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)");
  step = "the notebook's kernel becomes idle";
  await notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").waitFor();
  await kernelReady;
  step = "type 6*7 in the first cell and run it";
  await notebook.locator(".jp-Cell .cm-content").first().click();
  await page.keyboard.type("6*7");
  await notebook.locator(".jp-Cell .cm-content", { hasText: "6*7" }).first().waitFor();
  await page.keyboard.press("Shift+Enter");
  await notebook.locator(".jp-OutputArea-output", { hasText: "42" }).first().waitFor();
  result.output = await notebook.locator(".jp-OutputArea-output").first().innerText();
  step = "save with Ctrl+S";
  const saved = page.waitForResponse(
    (r) => r.request().method() === "PUT" && r.url().includes("/api/contents/hello.ipynb"),
  );
  await page.keyboard.press("Control+s");
  result.save_status = (await saved).status();
}

async function codeServerWork() {
  result.trust_dialog = await page.getByText("Do you trust the authors").count();
  step = "Quick Open (Ctrl+P) notes.txt";
  await page.locator(".monaco-workbench").click({ position: { x: 640, y: 400 } });
  await page.keyboard.press("Control+p");
  const quickInput = page.locator(".quick-input-widget input");
  await quickInput.waitFor();
  await quickInput.fill("notes.txt");
  await page.locator(".quick-input-list .monaco-list-row", { hasText: "notes.txt" }).first().waitFor();
  await page.keyboard.press("Enter");
  step = "type in notes.txt and save with Ctrl+S";
  const editor = page.locator(".editor-instance .monaco-editor .view-lines", { hasText: "first line" });
  await editor.waitFor();
  await editor.click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(TYPED);
  await page.keyboard.press("Control+s");
  await page.locator(".tab.active:not(.dirty)", { hasText: "notes.txt" }).waitFor();
  step = "open a terminal (command palette) and run python3 there";
  await page.keyboard.press("Control+Shift+p");
  await quickInput.waitFor();
  await quickInput.fill(">Terminal: Create New Terminal");
  await page.locator(".quick-input-list .monaco-list-row", { hasText: "Create New Terminal" }).first().waitFor();
  await page.keyboard.press("Enter");
  await page.locator(".terminal-wrapper.active .xterm-helper-textarea").waitFor({ state: "attached" });
  await page.waitForFunction(() => document.activeElement?.classList.contains("xterm-helper-textarea"));
  // Written beside, then renamed: the explorer shows terminal-out.txt once it is complete.
  await page.keyboard.type("python3 -c 'print(6*7)' >.out && mv .out terminal-out.txt");
  await page.keyboard.press("Enter");
  await page.locator(".explorer-folders-view .monaco-list-row", { hasText: "terminal-out.txt" }).waitFor();
}
