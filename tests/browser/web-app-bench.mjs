// Figures of Weft's web app in headless Chromium (Debian's), printed as JSON; asserts
// nothing. The first page: its JS and CSS as transferred (gzipped) and its first contentful
// paint. The designer with the workflow WORKFLOW_ID (1,000 nodes, saved with their positions):
// navigation -> drawn (the app's start, the API, React Flow), a node dragged (frame times from
// requestAnimationFrame), auto-layout -> laid out again (as opened, and after a node deleted); and, in a browser of its own (its own
// cache, as the first), the same workflow saved without positions, UNPLACED_ID:
// navigation -> laid out and drawn. Used by host/benches/web_app.rs.
//
//   node web-app-bench.mjs BASE_URL NAME PASSWORD WORKFLOW_ID NODES UNPLACED_ID
import { launch, signIn } from "./app.mjs";

const [base, name, password, workflow, count, unplaced] = process.argv.slice(2);
const nodes = Number(count);
const figures = {};

/** Opens the designer on workflow `id` and returns navigation -> first layout drawn, in ms. */
async function openDesigner(page, id) {
  await page.goto(`${base}/workflows/${id}`);
  await page.locator('[data-testid="canvas"][data-layouts="1"]').waitFor();
  await page.waitForFunction(() => document.querySelectorAll(".react-flow__node").length > 0, null, {
    polling: "raf",
  });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  return Math.round(await page.evaluate(() => performance.now()));
}

/** Clicks Auto-layout and returns click -> laid out and drawn, in ms. */
async function autoLayout() {
  const layouts = await page.getByTestId("canvas").getAttribute("data-layouts");
  const before = await page.evaluate(() => performance.now());
  await page.getByRole("button", { name: "Auto-layout" }).click();
  await page.locator(`[data-testid="canvas"][data-layouts="${Number(layouts) + 1}"]`).waitFor();
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  return Math.round((await page.evaluate(() => performance.now())) - before);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const { browser, page } = await launch({ timeout: 60_000 });
try {
  // The first page, cold: what it transfers and when it paints.
  await page.goto(base);
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  Object.assign(
    figures,
    await page.evaluate(() => {
      const resources = performance.getEntriesByType("resource");
      const assets = resources.filter((r) => /\.(js|css)$/.test(new URL(r.name).pathname));
      const fcp = performance.getEntriesByName("first-contentful-paint")[0];
      return {
        first_page_js_css_bytes_transferred: assets.reduce((sum, r) => sum + r.encodedBodySize, 0),
        first_page_js_css_bytes_decoded: assets.reduce((sum, r) => sum + r.decodedBodySize, 0),
        first_contentful_paint_ms: fcp ? Math.round(fcp.startTime) : null,
      };
    }),
  );
  await signIn(page, base, name, password);

  // The same workflow saved without positions, in a browser of its own: laid out on opening.
  const other = await launch({ timeout: 60_000 });
  try {
    await signIn(other.page, base, name, password);
    figures.designer_load_unplaced_ms = await openDesigner(other.page, unplaced);
  } finally {
    await other.browser.close();
  }

  // The designer with the big workflow at its saved positions (the nodes in view rendered:
  // big graphs render only those).
  figures.designer_load_ms = await openDesigner(page, workflow);
  figures.nodes = nodes;
  figures.nodes_rendered = await page.locator(".react-flow__node").count();

  // A drag of one node: the time between frames while it moves.
  const box = await page.locator(".react-flow__node").first().boundingBox();
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const tick = (t) => {
      window.__frames.push(t - last);
      last = t;
      if (window.__recording) requestAnimationFrame(tick);
    };
    window.__recording = true;
    requestAnimationFrame(tick);
  });
  const x = box.x + box.width / 2;
  const y = box.y + 8;
  await page.mouse.move(x, y);
  await page.mouse.down();
  for (let i = 1; i <= 60; i++) await page.mouse.move(x + i * 4, y + i * 2);
  await page.mouse.up();
  const frames = await page.evaluate(() => {
    window.__recording = false;
    return window.__frames.slice(1);
  });
  const sorted = [...frames].sort((a, b) => a - b);
  figures.drag_frames = frames.length;
  figures.drag_frame_ms_p50 = Number(percentile(sorted, 50).toFixed(1));
  figures.drag_frame_ms_p95 = Number(percentile(sorted, 95).toFixed(1));
  figures.drag_fps = Number((1000 / (frames.reduce((a, b) => a + b, 0) / frames.length)).toFixed(1));

  // Auto-layout of the whole graph: click -> laid out and drawn, as the graph opened (its layout
  // made ahead in elk's worker while the page was idle), then after an edit (a node deleted: elk
  // lays the graph out from the click on).
  figures.auto_layout_ms = await autoLayout();
  const deleted = await page.locator(".react-flow__node [data-testid]").first().getAttribute("data-testid");
  await page.getByTestId(deleted).locator(".title").click();
  await page.keyboard.press("Delete");
  await page.getByTestId(deleted).waitFor({ state: "detached" });
  figures.auto_layout_edited_ms = await autoLayout();
  console.log(JSON.stringify(figures));
} catch (error) {
  console.error(`${error.stack}\nfigures so far: ${JSON.stringify(figures)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
