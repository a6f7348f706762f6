// A victim's browser: signs in to its own session with its one-time link, then opens the link an
// attacker sent and prints, as JSON, what the attacker's page reported (tests/e2e/browser.rs).
//
//   node hostile-page.mjs VICTIM_LINK VICTIM_CHECK_URL ATTACKER_LINK
import { chromium } from "playwright-core";

const [victimLink, victimCheck, attackerLink] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.WEFT_TEST_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--no-proxy-server"],
});
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(victimLink);
  // The victim's own session works in this browser (its cookie is set).
  const own = await page.goto(victimCheck);
  const ownStatus = own.status();
  await page.goto(attackerLink);
  await page.waitForFunction(() => document.title.startsWith("done "), null, { timeout: 30_000 });
  const attack = JSON.parse((await page.title()).slice("done ".length));
  console.log(JSON.stringify({ own: ownStatus, attack }));
} finally {
  await browser.close();
}
