// A person on the Workspaces page of Weft's web app, in headless Chromium (Debian's): signs
// in, opens the project PROJECT, sees its files, uploads UPLOAD with the page's file input,
// opens Jupyter (the session's start shown on the page) and waits for JupyterLab to load in
// the new tab, its file browser listing the uploaded file. Jupyter then saves two files in the
// workspace, `made-in-jupyter.txt` and the 4 KiB `too-big.txt`. Back on the page: the session's
// idle and lifetime countdowns and the time used against the quota; "Stop (sync)" shows the
// sync's progress, then its result and what it refused. Prints what it saw as JSON; saves a
// screenshot of the tab in SHOT_DIR, or of a failure (web-app-workspace-failure.png). Used by
// tests/e2e/browser.rs.
//
//   node web-app-workspace.mjs BASE_URL NAME PASSWORD PROJECT UPLOAD SHOT_DIR
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { launch, signIn } from "./app.mjs";

const [base, name, password, project, upload, shotDir] = process.argv.slice(2);
mkdirSync(shotDir, { recursive: true });
const { browser, context, page } = await launch();
const seen = { statuses: [] };
let tab = null;

try {
  await signIn(page, base, name, password);
  await page.getByRole("link", { name: "Workspaces" }).click();
  await page.getByRole("button", { name: project }).click();
  await page.locator(".files td", { hasText: "hello.txt" }).waitFor();
  await page.locator('.files input[type="file"]').setInputFiles(upload);
  await page.locator(".files td", { hasText: basename(upload) }).waitFor();
  seen.files = await page.locator(".files tbody td:first-child").allInnerTexts();

  const opened = context.waitForEvent("page");
  await page.getByRole("button", { name: "Jupyter" }).click();
  tab = await opened;
  // The session's start as the page shows it, until the tab leaves about:blank.
  const status = page.getByRole("status");
  while (tab.url() === "about:blank") {
    const text = await status.innerText({ timeout: 1000 }).catch(() => null);
    if (text && seen.statuses.at(-1) !== text.trim()) seen.statuses.push(text.trim());
    await page.waitForTimeout(200);
  }
  await tab.locator(".jp-LabShell").waitFor({ timeout: 90_000 });
  await tab.locator(".jp-DirListing-item", { hasText: basename(upload) }).waitFor({ timeout: 60_000 });
  seen.tab_origin = new URL(tab.url()).origin;
  seen.jupyterlab = true;
  await tab.screenshot({ path: join(shotDir, "workspace-jupyter.png") });

  // Two files saved in the workspace through Jupyter's contents API, from the tab (its cookie,
  // its XSRF token).
  for (const [file, content] of [["made-in-jupyter.txt", "hello"], ["too-big.txt", "x".repeat(4096)]]) {
    const saved = await tab.evaluate(async ([file, content]) => {
      const xsrf = document.cookie.match(/_xsrf=([^;]*)/)?.[1] ?? "";
      const response = await fetch(`/api/contents/${file}`, {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf) },
        body: JSON.stringify({ type: "file", format: "text", content }),
      });
      return `${response.status} ${response.ok ? "" : await response.text()}`;
    }, [file, content]);
    if (!saved.startsWith("20")) throw new Error(`Jupyter did not save ${file}: ${saved}`);
  }

  // Back on the page: when the session stops, and the time used against the quota.
  await page.bringToFront();
  seen.idle = await page.getByTestId("idle-countdown").innerText();
  seen.lifetime = await page.getByTestId("lifetime-countdown").innerText();
  seen.usage = await page.getByTestId("usage").innerText();
  seen.usage_bar = await page.locator('[data-testid="usage"] progress').evaluate((bar) => bar.max);

  // Stop with sync: its progress as the page shows it, until the result.
  await page.getByRole("button", { name: "Stop (sync)" }).click();
  const progress = page.getByTestId("stop-progress");
  seen.stop_progress = [];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const text = (await progress.innerText()).replace(/\d+ s$/, "N s").trim();
    if (text && seen.stop_progress.at(-1) !== text) seen.stop_progress.push(text);
    if (text.startsWith("Stopped.")) break;
    if (Date.now() > deadline) throw new Error(`the stop did not finish: ${text}`);
    await page.waitForTimeout(100);
  }
  seen.not_synced = await page.getByRole("list", { name: "Not synced" }).innerText();
  console.log(JSON.stringify(seen));
} catch (error) {
  const shot = join(shotDir, "web-app-workspace-failure.png");
  await (tab ?? page).screenshot({ path: shot }).catch(() => {});
  console.error(`${error.stack}\nscreenshot: ${shot}\nseen: ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
