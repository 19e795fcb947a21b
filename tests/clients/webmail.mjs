// The webmail as a user drives it, in Debian's Chromium under Playwright
// (npm playwright-core; no browser is downloaded): sign in, read a
// message, open a hostile HTML message, compose with an attachment and
// send, reply, search, mark spam, set a vacation reply and a filter,
// change the password, sign out. Every
// request to a host other than the server, every dialog and every error
// the page throws is recorded. A screenshot of each step goes to DIR.
// Prints one JSON object: the steps done, what was recorded, figures.
// Usage: node webmail.mjs BASE_URL USER PASSWORD DIR
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { audit } from "./a11y.mjs";

const [base, user, password, dir] = process.argv.slice(2);
const out = { a11y: [], steps: [], external: [], allowedImages: [], dialogs: [], pageErrors: [], figures: {} };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
const page = await context.newPage();
page.setDefaultTimeout(15000);
page.on("request", (r) => {
  const url = r.url();
  if (url.startsWith("https://images.invalid/")) out.allowedImages.push(url);
  else if (!url.startsWith(base) && !url.startsWith("data:") && !url.startsWith("about:")) out.external.push(url);
});
const sizes = [];
page.on("requestfinished", (r) => {
  if (r.url().startsWith(base)) sizes.push(r.sizes().then((s) => s.responseBodySize + s.responseHeadersSize, () => 0));
});
page.on("dialog", async (d) => {
  if (d.type() === "prompt" && d.message() === "Folder name") { await d.accept("Projects"); return; }
  if (d.type() === "prompt" && d.message() === "New name") { await d.accept("Plans"); return; }
  if (d.type() === "confirm" && d.message() === "Delete the folder Plans?") { await d.accept(); return; }
  out.dialogs.push(`${d.type()}: ${d.message()}`);
  await d.dismiss();
});
page.on("pageerror", (e) => out.pageErrors.push(String(e)));

let n = 0;
async function step(name, body) {
  await body();
  for (const p of await audit(page)) out.a11y.push(`${name}: ${p}`);
  n += 1;
  await page.screenshot({ path: join(dir, `${String(n).padStart(2, "0")}-${name}.png`) });
  out.steps.push(name);
}

const rowWith = (subject) => page.locator("#message-list li", { hasText: subject });
// Open a message and wait until the reader shows it (its buttons act on
// the message shown: clicking them before would act on the one before).
async function read(subject) {
  await rowWith(subject).click();
  await page.waitForFunction((s) => document.querySelector("#reader h2")?.textContent === s, subject);
}

await step("sign-in", async () => {
  const started = Date.now();
  await page.goto(base + "/");
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#message-list li");
  out.figures.signInToListMs = Date.now() - started;
  out.figures.firstLoadBytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
});

await step("read", async () => {
  await read("Hello from Bob");
  await page.waitForSelector("#reader .body-text");
  out.read = await page.textContent("#reader .body-text");
  out.verdict = await page.locator("#reader .verdict").allTextContents();
});

await step("hostile", async () => {
  await read("Hostile");
  const frame = page.frameLocator("#reader iframe");
  await frame.locator("body").waitFor();
  await page.waitForTimeout(800);
  const element = await page.$("#reader iframe");
  const content = await (await element.contentFrame()).content();
  out.hostileFrame = content;
  out.pwned = await page.evaluate(() => window.__pwned === true || document.cookie.includes("stolen"));
  out.remoteImagesButton = await page.locator("#reader button", { hasText: "Show remote images" }).count();
});

await step("attached", async () => {
  await read("Forwarded note");
  await page.click("#reader button:text-is('Read attached message')");
  await page.waitForSelector("#reader .attached .body-text");
  out.attached = await page.textContent("#reader .attached");
});

// An attached HTML message, sanitized in its own frame; its remote
// images allowed for its sender (the only request to another host the
// page may make, recorded apart).
await step("attached-html", async () => {
  await read("Forwarded page");
  await page.click("#reader button:text-is('Read attached message')");
  const frame = await (await page.waitForSelector("#reader .attached iframe")).contentFrame();
  await frame.waitForSelector("p");
  out.attachedHtml = await frame.content();
  await page.click("#reader .attached button:text-is('Always show images from dan@d.test')");
  await page.waitForFunction(() => document.querySelector("#reader .attached iframe").src.endsWith("?images=1"));
  await page.waitForTimeout(300);
  out.imagesFrom = await page.evaluate(() => localStorage.getItem("tern-images-from"));
});

await step("compose", async () => {
  await page.click("#compose-button");
  await page.fill("#c-to", "bob@a.test");
  await page.fill("#c-subject", "Lunch on Friday");
  await page.fill("#c-body", "Shall we meet at noon?");
  const file = join(dir, "agenda.txt");
  writeFileSync(file, "1. lunch\n2. plans\n");
  await page.setInputFiles("#c-files", file);
  await page.waitForFunction(() => !document.querySelector("#c-attachments progress"));
  await page.click("#c-send");
  // The window closes once the server took it (a toast may still show
  // the send before).
  await page.waitForSelector("#compose", { state: "hidden" });
  await page.waitForSelector("#toast:text('Sent')");
});

await step("reply", async () => {
  await read("Hello from Bob");
  await page.click("#reader button:text-is('Reply')");
  await page.fill("#c-body", "Thanks Bob!");
  await page.click("#c-send");
  // The window closes once the server took it (a toast may still show
  // the send before).
  await page.waitForSelector("#compose", { state: "hidden" });
  await page.waitForSelector("#toast:text('Sent')");
});

await step("search", async () => {
  await page.fill("#search", "figures");
  await page.press("#search", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("#message-list li").length === 1);
  out.searchFound = await page.locator("#message-list li .subject").allTextContents();
  await page.fill("#search", "");
  await page.click("#folder-list a >> text=INBOX");
  await page.waitForSelector("#message-list li");
});

await step("folder", async () => {
  await page.click("#new-folder");
  await page.waitForSelector("#folder-list a >> text=Projects");
});

// Rename and delete a folder of one's own (roles' folders offer neither).
await step("rename-folder", async () => {
  await page.click("#folder-list a >> text=Projects");
  await page.click("#rename-folder");
  await page.waitForSelector("#folder-list a >> text=Plans");
  await page.click("#folder-list a >> text=Plans");
  await page.click("#delete-folder");
  await page.waitForSelector("#toast:text('Deleted Plans')");
  await page.waitForSelector("#folder-list a >> text=Plans", { state: "detached" });
  out.foldersAfter = await page.locator("#folder-list a span:first-child").allTextContents();
  out.inboxRenameHidden = await page.locator("#rename-folder").isHidden();
});

// Conversations: Bob's message and Alice's reply are one row, counted;
// the reader lists both. Sorting by subject puts "Cheap pills" first.
await step("conversation", async () => {
  await page.check("#threads");
  await page.waitForSelector("#message-list li .thread-count");
  out.threadRow = await page.locator("#message-list li", { has: page.locator(".thread-count") }).first().textContent();
  await read("Hello from Bob");
  await page.waitForSelector("#reader nav.conversation li");
  out.conversation = await page.locator("#reader nav.conversation li").count();
  await page.uncheck("#threads");
  await page.selectOption("#sort", "subject");
  await page.waitForFunction(() => document.querySelector("#message-list li .subject")?.textContent.startsWith("Cheap pills"));
  out.sortedFirst = await page.locator("#message-list li .subject").first().textContent();
  await page.selectOption("#sort", "newest");
  await page.waitForFunction(() => !document.querySelector("#message-list li .subject")?.textContent.startsWith("Cheap pills"));
});

await step("forward-attached", async () => {
  await read("Hello from Bob");
  await page.click("#reader button:text-is('Forward as attachment')");
  await page.waitForSelector("#c-attachments li");
  await page.fill("#c-to", "bob@a.test");
  await page.click("#c-send");
  // The window closes once the server took it (a toast may still show
  // the send before).
  await page.waitForSelector("#compose", { state: "hidden" });
  await page.waitForSelector("#toast:text('Sent')");
});

await step("spam", async () => {
  await read("Cheap pills");
  await page.click("#reader button:text-is('Spam')");
  await page.waitForSelector("#toast:text('Moved to Junk')");
});

await step("draft", async () => {
  await page.click("#compose-button");
  await page.fill("#c-to", "carol@far.test");
  await page.fill("#c-subject", "Plans for spring");
  await page.fill("#c-body", "Half written.");
  await page.keyboard.press("Escape");
  await page.waitForSelector("#toast:text('Draft saved')");
  await page.click("#folder-list a >> text=Drafts");
  await page.waitForSelector("#message-list li:has-text('Plans for spring')");
  out.drafts = await page.locator("#message-list li .subject").allTextContents();
  await page.click("#folder-list a >> text=INBOX");
  await page.waitForSelector("#message-list li");
});

await step("vacation", async () => {
  await page.click("#settings-button");
  await page.check("#v-enabled");
  await page.fill("#v-subject", "Away");
  await page.fill("#v-body", "Back on Monday.");
  await page.click("#settings-save");
  await page.waitForSelector("#toast:text('Settings saved')");
  out.sessionsListed = true;
});

await step("filters", async () => {
  await page.click("#settings-button");
  await page.click("#f-add");
  const rule = page.locator("#f-rules li").last();
  await rule.locator(".f-field").selectOption("subject");
  await rule.locator(".f-value").fill("[report]");
  await rule.locator(".f-then").selectOption("move");
  await rule.locator(".f-target").fill("Reports");
  await page.click("#f-save");
  await page.waitForSelector("#toast:text('Filters saved (1 rule)')");
  out.filterRules = await page.locator("#f-rules li").count();
  await page.click("#settings-close");
});

// A certificate the test made for this address (DIR/alice-cert.pem) is
// published from Settings; a private key is refused with a reason.
await step("keys", async () => {
  await page.click("#settings-button");
  // Encryption at rest needs a key to encrypt to: refused with the reason.
  // A click, not check(): the page unticks the box when the server says
  // no, which may happen before check() looks (it would call that a failure).
  await page.click("#k-encrypt");
  await page.waitForFunction(() => document.getElementById("k-error").textContent.includes("publish"));
  out.encryptRefused = await page.textContent("#k-error");
  out.encryptCheckedWithoutKey = await page.isChecked("#k-encrypt");
  await page.setInputFiles("#k-file", join(dir, "alice-key.pem"));
  await page.waitForFunction(() => document.getElementById("k-error").textContent.length > 0);
  out.keyRefused = await page.textContent("#k-error");
  await page.setInputFiles("#k-file", join(dir, "alice-cert.pem"));
  await page.waitForSelector("#k-list li");
  out.keys = await page.textContent("#k-list");
  // With the certificate, it goes on (S/MIME), then off again.
  await page.check("#k-encrypt");
  await page.waitForSelector("#toast:text('New mail will be stored encrypted')");
  out.encryptChecked = await page.isChecked("#k-encrypt");
  await page.uncheck("#k-encrypt");
  await page.waitForSelector("#toast:text('New mail will be stored as it comes')");
  await page.click("#settings-close");
});

await step("password", async () => {
  await page.click("#settings-button");
  await page.fill("#p-current", "wrong-password");
  await page.fill("#p-new", "a-new-secret-1");
  await page.fill("#p-repeat", "a-new-secret-1");
  await page.click("#p-change");
  await page.waitForSelector("#p-error:has-text('wrong')");
  await page.fill("#p-current", password);
  await page.click("#p-change");
  await page.waitForSelector("#toast:text('Password changed')");
  await page.click("#settings-close");
});

await step("sign-out", async () => {
  await page.click("#signout");
  await page.waitForSelector("#signin-form");
  const r = await page.evaluate(async () => (await fetch("/webmail/session")).status);
  out.afterSignOut = r;
});

await browser.close();
console.log(JSON.stringify(out));
