// A person looking at a finished run in Weft's web app, in headless Chromium (Debian's): signs
// in, opens run RUN_ID, opens its node NODE and reads every attempt of it (its state, times,
// error and logs). Prints what it saw as JSON with axe-core's serious and critical violations
// of the page; saves a screenshot of a failure in SHOT_DIR (web-app-run-failure.png). Used by
// tests/e2e/browser.rs.
//
//   node web-app-run.mjs BASE_URL NAME PASSWORD RUN_ID NODE SHOT_DIR
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { audit, launch, signIn } from "./app.mjs";

const [base, name, password, run, node, shotDir] = process.argv.slice(2);
mkdirSync(shotDir, { recursive: true });
const { browser, page } = await launch();
const seen = { console_errors: [] };
page.on("pageerror", (e) => seen.console_errors.push(String(e)));

try {
  await signIn(page, base, name, password);
  await page.goto(new URL(`/runs/${run}`, base).href);
  await page.locator('[data-testid="run-status"]:text-matches("succeeded|failed|cancelled")').waitFor();
  await page.getByRole("button", { name: node, exact: true }).click();
  const list = page.getByRole("list", { name: `Attempts of ${node}` });
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
  seen.a11y = await audit(page);
  console.log(JSON.stringify(seen));
} catch (error) {
  const shot = join(shotDir, "web-app-run-failure.png");
  await page.screenshot({ path: shot }).catch(() => {});
  console.error(`${error.stack}\nscreenshot: ${shot}\nseen: ${JSON.stringify(seen)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
