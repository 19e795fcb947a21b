// Sign in to the webmail and open each message named, in Debian's
// Chromium under Playwright; print the verdict badges shown for each as
// JSON ({subject: [badge, ...]}).
// Usage: node webmail_read.mjs BASE_URL USER PASSWORD SUBJECT...
import { chromium } from "playwright-core";

const [base, user, password, ...subjects] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const page = await browser.newPage();
page.setDefaultTimeout(15000);
const out = {};
try {
  await page.goto(base + "/");
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#message-list li");
  for (const subject of subjects) {
    await page.locator("#message-list li", { has: page.locator(`.subject:text-is("${subject}")`) }).click();
    await page.waitForFunction((s) => document.querySelector("#reader h2")?.textContent === s, subject);
    await page.waitForTimeout(200);
    out[subject] = await page.locator("#reader .verdict").allTextContents();
  }
} catch (e) {
  out.error = String(e);
}
await browser.close();
console.log(JSON.stringify(out));
