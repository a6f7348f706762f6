// A person at work in a session, in headless Chromium: opens the session's one-time link and
// waits for an interactive UI (JupyterLab's shell with the project's files / VS Code's workbench
// with the project's explorer); with `work`, then does what a student does there. Prints, as
// JSON, how long the link took to become interactive, what the page showed, how many responses
// the browser saw and every failed one (404/5xx or any other 4xx, failed requests, WebSocket
// errors) on the way. Saves a screenshot in SHOT_DIR at the end of a `work` flow (KIND.png), or
// of a failure (KIND-failure.png, its path printed), and the browser's network log beside it
// (KIND-network.json). Used by tests/e2e/browser.rs and host/benches/sessions_ui.rs.
//
//   node workspace-ui.mjs jupyter|code-server open|work LINK SHOT_DIR [UPLOAD]
//
// jupyter work: uploads the file UPLOAD through the file browser's upload button (JupyterLab
// sends files over 15 MiB in chunks, after asking), downloads the project's `data.bin` from the
// file browser's context menu (printed: its URL, size and SHA-256), turns on the terminal's
// screen reader mode in the Settings Editor (xterm draws on a canvas; the accessibility tree is
// the page's text of it), opens a Terminal from the launcher and runs `python3 -c 'print(6*7)'`
// there until `42` shows; then opens `hello.ipynb` from the file browser, types `6*7` in its
// first cell, runs it, waits for `42`, saves with Ctrl+S.
// code-server work: opens `notes.txt` with Quick Open (Ctrl+P), types a line, saves with Ctrl+S;
// opens a terminal and runs python3 there, which writes `terminal-out.txt`; opens the Extensions
// view and lists the built-in extensions for Python (served by code-server, so offline works).
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { launch } from "./app.mjs";

const [kind, mode, link, shotDir, upload] = process.argv.slice(2);
const TYPED = "typed in the browser";
const TIMEOUT = 60_000;
mkdirSync(shotDir, { recursive: true });

const { browser, context, page } = await launch({ viewport: { width: 1280, height: 800 }, timeout: TIMEOUT });
// The browser's network log: every response and failed request. Failures are kept apart,
// except the benign ones below, each inherent to the upstream UI and not served by Weft.
const network = [];
const failed = [];
const exempted = [];
function benign(entry) {
  const { pathname, origin } = new URL(entry.url);
  // code-server's workbench asks for `vsda` (Microsoft's proprietary signing module, only in
  // their own builds: 404 here) and goes on without it.
  if (entry.status === 404 && pathname.includes("/static/node_modules/vsda/")) return true;
  // code-server's Extensions view queries its marketplace, Open VSX, straight from the browser
  // (its built-in default gallery, https://open-vsx.org/vscode/gallery); offline (as on this
  // machine, where the name does not resolve) the view says so and still lists what is
  // installed and built in. Nothing of Weft's is on that origin.
  return origin === "https://open-vsx.org";
}
function fail(entry) {
  (benign(entry) ? exempted : failed).push(entry);
}
page.on("response", (r) => {
  const entry = { status: r.status(), method: r.request().method(), url: r.url() };
  network.push(entry);
  if (r.status() >= 400) fail(entry);
});
page.on("requestfailed", (r) => {
  const entry = { error: r.failure()?.errorText ?? "failed", method: r.method(), url: r.url() };
  network.push(entry);
  // A request the page itself gave up on (navigation away, a superseded fetch) is no failure.
  if (entry.error !== "net::ERR_ABORTED") fail(entry);
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
  network.push({ websocket: ws.url() });
  ws.on("socketerror", (error) => failed.push({ error, websocket: ws.url() }));
});
const result = { kind, mode, failed, exempted };
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
  if (mode === "work") await page.screenshot({ path: join(shotDir, `${kind}.png`) });
} catch (e) {
  result.screenshot = join(shotDir, `${kind}-failure.png`);
  await page.screenshot({ path: result.screenshot }).catch(() => {});
  result.ok = false;
  result.error = `${step}: ${e.message}`;
} finally {
  await browser.close();
}
result.responses = network.filter((entry) => entry.status).length;
writeFileSync(join(shotDir, `${kind}-network.json`), JSON.stringify(network, null, 1));
console.log(JSON.stringify(result));

// `waiter` (set up before the action it waits for), marked handled: a flow that fails before
// awaiting it ends with its own error, not an unhandled rejection when the browser closes.
function before(waiter) {
  waiter.catch(() => {});
  return waiter;
}

// `promise`, or an error naming `what` after TIMEOUT (for promises Playwright does not time).
function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} in ${TIMEOUT} ms`)), TIMEOUT);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function jupyterWork() {
  await jupyterUpload();
  await jupyterDownload();
  await jupyterTerminal();
  await jupyterNotebook();
}

async function jupyterUpload() {
  const name = basename(upload);
  const size = statSync(upload).size;
  step = `upload ${name} (${size} bytes) with the file browser's upload button`;
  // Chunked or not, the upload ends with the answer whose model has the whole file.
  const uploaded = before(page.waitForResponse(
    async (r) =>
      r.request().method() === "PUT" &&
      new URL(r.url()).pathname.endsWith(`/api/contents/${name}`) &&
      (r.status() >= 400 || (await r.json()).size === size),
    { timeout: 2 * TIMEOUT },
  ));
  const chooser = before(page.waitForEvent("filechooser"));
  await page.locator(".jp-FileBrowser-toolbar [data-jp-item-name='uploader'] [title='Upload Files']").click();
  await (await chooser).setFiles(upload);
  // JupyterLab asks before uploading a large file, and before overwriting one (as when a flow
  // runs again in the same session): a person says yes.
  const accept = page.locator(".jp-Dialog .jp-mod-accept");
  const dialog = () => accept.waitFor().then(() => true, () => false);
  while (await Promise.race([uploaded.then(() => false, () => false), dialog()])) {
    await accept.click();
    await accept.waitFor({ state: "detached" });
  }
  result.upload_status = (await uploaded).status();
  await page.locator(".jp-DirListing-item", { hasText: name }).waitFor();
}

async function jupyterDownload() {
  step = "download data.bin from the file browser's context menu";
  await page.locator(".jp-DirListing-item", { hasText: "data.bin" }).click({ button: "right" });
  const started = before(page.waitForEvent("download"));
  await page.locator(".lm-Menu-item[data-command='filebrowser:download']").click();
  const download = await started;
  const path = await within(download.path(), "end of the download");
  const failure = await download.failure();
  if (failure) throw new Error(`the download failed: ${failure}`);
  const bytes = readFileSync(path);
  result.download = {
    url: download.url(),
    name: download.suggestedFilename(),
    size: bytes.length,
    sha256: createHash("sha256").update(bytes).digest("hex"),
  };
}

async function jupyterTerminal() {
  step = "turn on the terminal's screen reader mode in the Settings Editor";
  await page.keyboard.press("Control+,");
  const search = page.locator("input[placeholder^='Search settings']");
  await search.fill("screen reader");
  const screenReader = page.getByRole("checkbox", { name: "Screen Reader Mode" });
  // (Already on when a flow runs again in the same session.)
  if (!(await screenReader.isChecked())) {
    const saved = before(page.waitForResponse(
      (r) => r.request().method() === "PUT" && r.url().includes("/api/settings/@jupyterlab/terminal-extension"),
    ));
    await screenReader.check();
    result.settings_status = (await saved).status();
  }
  step = "open a Terminal from a new launcher";
  await page.locator(".jp-FileBrowser-toolbar [data-command='launcher:create']").click();
  await page.locator(".jp-LauncherCard[title='Start a new terminal session']").filter({ visible: true }).click();
  const terminal = page.locator(".jp-Terminal").filter({ visible: true });
  await terminal.locator(".xterm-helper-textarea").waitFor({ state: "attached" });
  await page.waitForFunction(() => document.activeElement?.classList.contains("xterm-helper-textarea"));
  step = "run python3 in the terminal until 42 shows";
  await page.keyboard.type("python3 -c 'print(6*7)'");
  await page.keyboard.press("Enter");
  // The command line shows `6*7`; only the output is a row of its own reading 42.
  const rows = terminal.locator(".xterm-accessibility-tree > div");
  await rows.filter({ hasText: /^\s*42\s*$/ }).first().waitFor();
  result.terminal = (await rows.allInnerTexts()).map((row) => row.trim()).filter(Boolean);
}

async function jupyterNotebook() {
  step = "open hello.ipynb from the file browser";
  await page.locator(".jp-DirListing-item", { hasText: "hello.ipynb" }).dblclick();
  const notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)");
  step = "the notebook's kernel becomes idle";
  await notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").waitFor();
  await within(kernelReady, "a kernel_info reply on the kernel's channels");
  step = "type 6*7 in the first cell and run it";
  await notebook.locator(".jp-Cell .cm-content").first().click();
  // Replaces what the cell holds (a flow that runs again finds its first run's cell there).
  await page.keyboard.press("Control+a");
  await page.keyboard.type("6*7");
  await notebook.locator(".jp-Cell .cm-content", { hasText: "6*7" }).first().waitFor();
  await page.keyboard.press("Shift+Enter");
  await notebook.locator(".jp-OutputArea-output", { hasText: "42" }).first().waitFor();
  result.output = await notebook.locator(".jp-OutputArea-output").first().innerText();
  step = "save with Ctrl+S";
  const saved = before(page.waitForResponse(
    (r) => r.request().method() === "PUT" && r.url().includes("/api/contents/hello.ipynb"),
  ));
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
  // The whole file, typed over (a flow that runs again finds its first run's line there).
  await page.keyboard.press("Control+a");
  await page.keyboard.type("first line");
  await page.keyboard.press("Enter");
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
  step = "open the Extensions view (Ctrl+Shift+X) and list the built-in ones for Python";
  await page.locator(".activitybar .action-item a[aria-label^='Extensions']").click();
  const view = page.locator(".extensions-viewlet");
  await view.locator(".extensions-search-container textarea[aria-label='Search Extensions in Marketplace']").waitFor();
  await page.keyboard.type("@builtin python");
  await view.locator(".extension-list-item", { hasText: "Python Language Basics" }).waitFor();
  result.extensions = await view.locator(".extension-list-item .name").allInnerTexts();
}
