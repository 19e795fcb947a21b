// S/MIME in the webmail, in Debian's Chromium under Playwright: Alice
// keeps her PKCS #12 key in the browser (a wrong passphrase refused
// first), sends Bob a signed message and a signed and encrypted one,
// then Bob keeps his key and decrypts it in the page, and a message the
// server encrypted at rest to his certificate.
// Every request to another host, every page error and every failed
// accessibility check is recorded; a screenshot of each step goes to DIR.
// Prints one JSON object.
// Usage: node webmail_smime.mjs BASE_URL DIR ALICE_P12 BOB_P12 PASSPHRASE
import { chromium } from "playwright-core";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { audit } from "./a11y.mjs";

const [base, dir, aliceP12, bobP12, passphrase] = process.argv.slice(2);
const out = { steps: [], a11y: [], external: [], pageErrors: [], decrypted: {} };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});

let n = 0;
async function session(user, password, body) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(base) && !url.startsWith("data:") && !url.startsWith("about:")) out.external.push(url);
  });
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  const step = async (name, work) => {
    await work();
    for (const p of await audit(page)) out.a11y.push(`${name}: ${p}`);
    n += 1;
    await page.screenshot({ path: join(dir, `${String(n).padStart(2, "0")}-${name}.png`) });
    out.steps.push(name);
  };
  await page.goto(base + "/");
  await page.fill("#username", user);
  await page.fill("#password", password);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector(`#me:text-is("${user}")`);
  await body(page, step);
  await context.close();
}

// Open the message and decrypt it with the key kept here: its text.
async function decrypt(page, subject) {
  await page.locator("#message-list li", { has: page.locator(`.subject:text-is("${subject}")`) }).click();
  await page.waitForFunction((s) => document.querySelector("#reader h2")?.textContent === s, subject);
  await page.fill("#d-passphrase", passphrase);
  await page.click("#reader button:text('Decrypt')");
  await page.waitForFunction(() => (document.getElementById("decrypted")?.textContent || "").length > 0);
  return page.textContent("#decrypted");
}

async function keepKey(page, file, out, key) {
  await page.click("#settings-button");
  await page.setInputFiles("#s-file", file);
  await page.fill("#s-passphrase", "not-the-passphrase");
  await page.click("#s-import");
  await page.waitForFunction(() => document.getElementById("s-error").textContent.length > 0);
  out[`${key}WrongPassphrase`] = await page.textContent("#s-error");
  await page.setInputFiles("#s-file", file);
  await page.fill("#s-passphrase", passphrase);
  await page.click("#s-import");
  await page.waitForSelector("#toast:text('Your S/MIME key is kept in this browser')");
  out[`${key}Status`] = await page.textContent("#s-status");
  await page.click("#settings-close");
}

async function write(page, subject, body, { sign, encrypt, attach }) {
  await page.click("#compose-button");
  await page.waitForSelector("#c-smime:not([hidden])");
  await page.fill("#c-to", "bob@a.test");
  await page.fill("#c-subject", subject);
  await page.fill("#c-body", body);
  if (attach) {
    const file = join(dir, attach.name);
    writeFileSync(file, attach.text);
    await page.setInputFiles("#c-files", file);
    await page.waitForSelector("#c-attachments li");
    await page.waitForFunction(() => !document.querySelector("#c-attachments progress"));
  }
  if (sign) await page.check("#c-sign");
  if (encrypt) await page.check("#c-encrypt");
  await page.fill("#c-passphrase", passphrase);
  await page.click("#c-send");
  // The window closes once the server took it (a toast may still show
  // the send before).
  await page.waitForSelector("#compose", { state: "hidden" });
  await page.waitForSelector("#toast:text('Sent')");
}

try {
  await session("alice@a.test", "alice-pw", async (page, step) => {
    await step("alice-keeps-her-key", () => keepKey(page, aliceP12, out, "alice"));
    await step("signed", () => write(page, "Signed in the browser", "Hello Bob,\nsigned by my own hand. Grüße!\n", { sign: true }));
    await step("signed-and-encrypted", () => write(page, "Sealed in the browser", "The vault code is 4711.\n",
      { sign: true, encrypt: true, attach: { name: "plans.txt", text: "Floor plans, page 1.\n" } }));
    // Encrypting to someone without a certificate is refused, with the reason.
    await step("no-certificate", async () => {
      await page.click("#compose-button");
      await page.fill("#c-to", "nobody@far.test");
      await page.fill("#c-subject", "Nope");
      await page.check("#c-encrypt");
      await page.fill("#c-passphrase", passphrase);
      await page.click("#c-send");
      await page.waitForFunction(() => document.getElementById("compose-error").textContent.includes("no certificate"));
      out.noCertificate = await page.textContent("#compose-error");
      await page.click("#c-cancel");
    });
    // Her Sent copy was encrypted to her own certificate too.
    await step("decrypt-sent", async () => {
      await page.click("#folder-list a >> text=Sent");
      await page.waitForSelector("#message-list li");
      out.decryptedSent = await decrypt(page, "Sealed in the browser");
    });
  });
  await session("bob@a.test", "bob-pw", async (page, step) => {
    await step("bob-keeps-his-key", () => keepKey(page, bobP12, out, "bob"));
    // What Alice's browser encrypted, and what the server encrypted at
    // rest to Bob's certificate.
    for (const [name, subject] of [["decrypt", "Sealed in the browser"], ["decrypt-at-rest", "Stored sealed"]]) {
      await step(name, async () => { out.decrypted[subject] = await decrypt(page, subject); });
    }
  });
} catch (e) {
  out.error = String(e);
}
await browser.close();
console.log(JSON.stringify(out));
