// What the web app's browser scripts share: Debian's Chromium at 1280x720, signing in through
// the app's own form, and axe-core's serious and critical violations of a page.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** Headless Chromium (WEFT_TEST_CHROMIUM or Debian's) with a page of `viewport` (1280x720 unless
 * told) that waits up to `timeout` ms (30 s unless told) for what it is asked. */
export async function launch({ viewport = { width: 1280, height: 720 }, timeout = 30_000 } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.WEFT_TEST_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--no-proxy-server"],
  });
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  return { browser, context, page };
}

/** Signs in on the app's sign-in page at `base` and waits for the app's shell. */
export async function signIn(page, base, name, password) {
  await page.goto(base);
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}

/** axe-core's serious and critical violations on the page as it is. */
export async function audit(page) {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target).join(", ")}`);
  });
}
