// The web admin as an operator drives it, in Debian's Chromium under
// Playwright: a user who is not an administrator is turned away; the
// administrator signs in, reads the health page, adds a domain and reads
// its DNS records with their live status, adds an account and sets its
// quota, signs out; the new account then signs in to the webmail.
// Requests to other hosts and page errors are recorded; a screenshot of
// each step goes to DIR. Prints one JSON object.
// Usage: node admin.mjs BASE_URL ADMIN PASSWORD USER USER_PASSWORD DIR
import { chromium } from "playwright-core";
import { join } from "node:path";
import { audit } from "./a11y.mjs";

const [base, admin, adminPassword, user, userPassword, dir] = process.argv.slice(2);
const out = { a11y: [], steps: [], external: [], dialogs: [], pageErrors: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
page.setDefaultTimeout(15000);
page.on("request", (r) => {
  const url = r.url();
  if (!url.startsWith(base) && !url.startsWith("data:") && !url.startsWith("about:")) out.external.push(url);
});
page.on("pageerror", (e) => out.pageErrors.push(String(e)));
// Prompts are answered from this list, in order; confirmations accepted.
const answers = [];
page.on("dialog", async (d) => {
  out.dialogs.push(`${d.type()}: ${d.message()}`);
  if (d.type() === "prompt") await d.accept(answers.shift() ?? "");
  else await d.accept();
});

let n = 0;
async function step(name, body) {
  await body();
  for (const p of await audit(page)) out.a11y.push(`${name}: ${p}`);
  n += 1;
  await page.screenshot({ path: join(dir, `${String(n).padStart(2, "0")}-${name}.png`), fullPage: true });
  out.steps.push(name);
}

async function signIn(path, address, password) {
  await page.goto(base + path);
  await page.fill("#username", address);
  await page.fill("#password", password);
  await page.click("#signin-form button[type=submit]");
}

try {
  await step("not-admin", async () => {
    await signIn("/admin", user, userPassword);
    await page.waitForFunction(() => document.getElementById("signin-error").textContent.length > 0);
    out.notAdmin = await page.textContent("#signin-error");
  });

  await step("sign-in", async () => {
    await signIn("/admin", admin, adminPassword);
    await page.waitForSelector("#health-facts dt");
  });

  await step("health", async () => {
    await page.getByRole("link", { name: "Health" }).click();
    await page.waitForSelector("#health-facts dd");
    out.health = await page.textContent("#health-facts");
  });

  await step("domain", async () => {
    await page.getByRole("link", { name: "Domains" }).click();
    await page.getByLabel("New domain").fill("b.test");
    await page.getByRole("button", { name: "Add domain" }).click();
    await page.waitForSelector("#domain-rows tr:has-text('b.test')");
    out.domainStatus = await page.textContent("#status");
  });

  await step("dns", async () => {
    await page.getByRole("button", { name: "DNS records of b.test" }).click();
    await page.waitForSelector("#dns-checks li span");
    out.dns = await page.textContent("#dns-lines");
    out.dnsChecks = await page.locator("#dns-checks li").count();
  });

  await step("account", async () => {
    await page.getByRole("link", { name: "Accounts" }).click();
    await page.getByLabel("New account").fill("carol@b.test");
    await page.getByLabel("Its password").fill("carol-pw-1");
    await page.getByRole("button", { name: "Add account" }).click();
    await page.waitForSelector("#account-rows tr:has-text('carol@b.test')");
  });

  await step("quota", async () => {
    answers.push("1G", "none");
    await page.getByRole("button", { name: "Set the quota of carol@b.test" }).click();
    await page.waitForSelector("#account-rows tr:has-text('carol@b.test'):has-text('1.0 GiB')");
  });

  await step("sign-out", async () => {
    await page.click("#signout");
    await page.waitForSelector("#signin:not([hidden])");
  });

  await step("new-user", async () => {
    await signIn("/", "carol@b.test", "carol-pw-1");
    await page.waitForFunction(() => document.getElementById("me").textContent.length > 0);
    out.newUser = await page.textContent("#me");
  });
} catch (e) {
  out.error = String(e);
  await page.screenshot({ path: join(dir, "failed.png"), fullPage: true }).catch(() => {});
}
await browser.close();
console.log(JSON.stringify(out));
