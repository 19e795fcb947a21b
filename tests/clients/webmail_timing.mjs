// How long the webmail takes from "Sign in" to a message list the user
// can act on, and how many bytes that took, in Debian's Chromium under
// Playwright: a fresh browser each run (nothing cached). Prints JSON.
// Usage: node webmail_timing.mjs BASE_URL USER PASSWORD [RUNS]
import { chromium } from "playwright-core";

const [base, user, password, runs = "5"] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const times = [];
let bytes = 0;
for (let i = 0; i < Number(runs); i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const sizes = [];
  page.on("requestfinished", (r) => sizes.push(r.sizes().then((s) => s.responseBodySize + s.responseHeadersSize, () => 0)));
  const started = Date.now();
  await page.goto(base + "/");
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("#signin-form button[type=submit]");
  await page.waitForFunction(() => document.querySelectorAll("#message-list li").length >= 50, null, { timeout: 60000 });
  times.push(Date.now() - started);
  bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
  await context.close();
}
await browser.close();
times.sort((a, b) => a - b);
console.log(JSON.stringify({ medianMs: times[Math.floor(times.length / 2)], slowestMs: times.at(-1), bytes, runs: times.length }));
