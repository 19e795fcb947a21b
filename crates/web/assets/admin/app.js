// Tern's web admin: the admin CLI's operations in the browser. One JSON
// endpoint, POST /admin/api {"action": ...}; the session is the
// webmail's (an HttpOnly cookie) and every call carries its CSRF token.
// Everything from the server is put in the page as text (textContent).

const $ = (id) => document.getElementById(id);
const state = { csrf: "", username: "" };
const SECTIONS = ["health", "domains", "accounts", "aliases", "queue", "reports", "history"];

// ---- the server -------------------------------------------------------

class Refused extends Error {}

async function api(action, args = {}) {
  const r = await fetch("/admin/api", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Tern-CSRF": state.csrf },
    body: JSON.stringify({ action, ...args }),
  });
  if (r.status === 401) { showSignin(""); throw new Refused("signed out"); }
  const type = r.headers.get("Content-Type") || "";
  const body = type.startsWith("application/json") ? await r.json() : { error: (await r.text()).trim() };
  if (!r.ok) throw new Refused(body.error || `the server said ${r.status}`);
  return body.result;
}

function say(text, bad = false) {
  $("status").textContent = text;
  $("status").classList.toggle("bad", bad);
}

// Run a change; say what happened; redraw the section.
async function change(action, args, done, section) {
  try {
    await api(action, args);
    say(done);
    await show(section);
    return true;
  } catch (e) {
    say(e.message, true);
    return false;
  }
}

// ---- building the page (text only) --------------------------------------

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function row(cells, buttons = []) {
  const tr = el("tr");
  cells.forEach((c, i) => {
    const td = el(i === 0 ? "th" : "td", c);
    if (i === 0) td.setAttribute("scope", "row");
    tr.append(td);
  });
  const td = el("td");
  for (const [label, name, run, danger] of buttons) {
    const b = el("button", label, { type: "button", "aria-label": name });
    if (danger) b.classList.add("danger");
    b.addEventListener("click", run);
    td.append(b);
  }
  if (buttons.length) tr.append(td);
  return tr;
}

function bytes(n) {
  if (n === null || n === undefined) return "no limit";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min`;
}

// ---- sections -----------------------------------------------------------

const draw = {
  async health() {
    const h = await api("health");
    const facts = [
      ["Version", h.version], ["Host name", h.hostname], ["Up for", duration(h.uptimeSeconds)],
      ["Domains", h.domains], ["Accounts", h.accounts],
      ["Queue", `${h.queue.messages} message(s)` + Object.entries(h.queue.recipients).map(([s, n]) => `, ${n} ${s}`).join("")],
      ["Disk", h.disk.error ? `${h.disk.path}: ${h.disk.error}` : `${bytes(h.disk.freeBytes)} free of ${bytes(h.disk.totalBytes)} (${h.disk.path})`],
      ["Certificate", h.certificate ? `expires ${h.certificate.notAfter} (${h.certificate.daysLeft} days left)` : "none yet"],
      ["Listeners", h.listeners.map((l) => `${l.name} ${l.address}`).join(", ")],
    ];
    const dl = $("health-facts");
    dl.replaceChildren();
    for (const [k, v] of facts) dl.append(el("dt", k), el("dd", v));
  },

  async domains() {
    const list = await api("domains");
    $("domain-rows").replaceChildren(...list.map((d) => row(
      [d.domain, d.accounts, d.aliases, d.created],
      [["DNS records", `DNS records of ${d.domain}`, () => dns(d.domain)],
       ["Remove", `Remove ${d.domain}`, () => {
         if (confirm(`Remove the domain ${d.domain}? (It must have no accounts or aliases left.)`))
           change("domainRemove", { domain: d.domain }, `removed ${d.domain}`, "domains");
       }, true]],
    )));
  },

  async accounts() {
    const list = await api("accounts");
    $("account-rows").replaceChildren(...list.map((a) => row(
      [a.address,
       `${bytes(a.storage)} of ${bytes(a.storageLimit)}`,
       `${a.messages} of ${a.messagesLimit ?? "no limit"}`,
       a.held ? "held" : "sending"],
      [["Password", `Set the password of ${a.address}`, () => {
         const p = prompt(`New password for ${a.address}`);
         if (p) change("accountPassword", { address: a.address, password: p }, `changed the password of ${a.address}`, "accounts");
       }],
       ["Quota", `Set the quota of ${a.address}`, () => {
         const storage = prompt("Storage limit (e.g. 2G, 500M, or none)", a.storageLimit === null ? "none" : String(a.storageLimit));
         if (storage === null) return;
         const messages = prompt("Message count limit (a number, or none)", a.messagesLimit === null ? "none" : String(a.messagesLimit));
         if (messages === null) return;
         change("accountQuota", { address: a.address, storage, messages }, `set the quota of ${a.address}`, "accounts");
       }],
       [a.held ? "Release" : "Hold", `${a.held ? "Release" : "Hold"} the outgoing mail of ${a.address}`, () =>
         change("accountHold", { address: a.address, hold: !a.held }, `${a.held ? "released" : "held"} the outgoing mail of ${a.address}`, "accounts")],
       ["Remove", `Remove ${a.address}`, () => {
         if (confirm(`Remove ${a.address} with all its mail? This cannot be undone.`))
           change("accountRemove", { address: a.address }, `removed ${a.address}`, "accounts");
       }, true]],
    )));
  },

  async aliases() {
    const list = await api("aliases");
    $("alias-rows").replaceChildren(...list.map((a) => row(
      [a.address, a.targets.join(", ")],
      [["Remove", `Remove ${a.address}`, () => {
        if (confirm(`Remove the alias ${a.address}?`))
          change("aliasRemove", { address: a.address }, `removed ${a.address}`, "aliases");
      }, true]],
    )));
  },

  async queue() {
    const list = await api("queue");
    $("queue-rows").replaceChildren(...list.map((q) => row(
      [`Q${q.id}`, q.created, q.sender || "<>", q.recipients.map((r) => `${r.address} (${r.state})`).join(", "), bytes(q.size)],
      [["Attempts", `Attempts of Q${q.id}`, () => queueDetail(q.id)],
       ["Retry", `Retry Q${q.id} now`, () => change("queueRetry", { id: q.id }, `Q${q.id} is due now`, "queue")],
       ["Delete", `Delete Q${q.id}`, () => {
         if (confirm(`Delete Q${q.id}? Its recipients will not get it, and no bounce is sent.`))
           change("queueDelete", { id: q.id }, `deleted Q${q.id}`, "queue");
       }, true]],
    )));
    if (!list.length) $("queue-rows").append(row(["The queue is empty."]));
  },

  async reports() {
    const list = await api("reports");
    $("report-rows").replaceChildren(...list.map((r) => row(
      [r.kind === "tls" ? "TLS" : "DMARC", r.org, r.domain, `${r.begin} – ${r.end}`, r.summary],
      [["Read", `Read report ${r.id}`, async () => {
        const t = await api("reportShow", { id: r.id });
        $("report-text").textContent = t.text;
        $("report-text").hidden = false;
        $("report-text").focus();
      }]],
    )));
    if (!list.length) $("report-rows").append(row(["No reports received yet."]));
  },

  async history() {},
};

async function dns(domain) {
  $("dns").hidden = false;
  $("dns-title").textContent = `DNS records of ${domain}`;
  const records = await api("dnsRecords", { domain });
  $("dns-lines").textContent = records.lines.join("\n");
  const checks = $("dns-checks");
  checks.replaceChildren(el("li", "Asking the DNS…"));
  try {
    const live = await api("dnsCheck", { domain });
    checks.replaceChildren(...live.checks.map((c) => {
      const li = el("li");
      li.append(el("span", c.status.toUpperCase(), { class: c.status }), document.createTextNode(` ${c.what}`));
      if (c.problem) li.append(document.createTextNode(`: ${c.problem}`));
      if (c.fix) li.append(el("pre", c.fix));
      return li;
    }));
  } catch (e) {
    checks.replaceChildren(el("li", e.message, { class: "fail" }));
  }
}

async function queueDetail(id) {
  const d = await api("queueShow", { id });
  $("queue-detail").hidden = false;
  $("queue-detail-title").textContent = `Q${d.id} from ${d.sender || "<>"}`;
  const items = d.recipients.map((r) =>
    el("li", `to ${r.address}: ${r.state}, ${r.attempts} attempt(s)${r.state === "queued" ? `, next ${r.next}` : ""}${r.lastReply ? `; last reply: ${r.lastReply}` : ""}`));
  for (const a of d.attempts)
    items.push(el("li", `${a.at} ${a.mx || ""} ${a.ip ? `[${a.ip}]` : ""} ${a.tls || "no TLS"} (${a.recipients}): ${a.reply}`));
  $("queue-attempts").replaceChildren(...items);
}

async function show(section) {
  if (!SECTIONS.includes(section)) section = "health";
  for (const s of SECTIONS) $(s).hidden = s !== section;
  for (const a of document.querySelectorAll("#tabs a")) {
    if (a.getAttribute("href") === `#${section}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    await draw[section]();
  } catch (e) {
    if (!(e instanceof Refused) || e.message !== "signed out") say(e.message, true);
  }
}

// ---- forms ----------------------------------------------------------------

function form(id, run) {
  $(id).addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await run()) $(id).reset();
  });
}

form("domain-form", () => {
  const domain = $("domain-name").value.trim();
  return change("domainAdd", { domain }, `added ${domain} with its DKIM keys; publish its DNS records`, "domains");
});
form("account-form", () => {
  const address = $("account-address").value.trim();
  return change("accountAdd", { address, password: $("account-password").value }, `added ${address}`, "accounts");
});
form("alias-form", () => {
  const address = $("alias-address").value.trim();
  return change("aliasAdd", { address, targets: $("alias-targets").value }, `added ${address}`, "aliases");
});
$("history-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const events = await api("history", { what: $("history-what").value.trim() });
    say(`${events.length} event(s)`);
    $("history-rows").replaceChildren(...events.map((ev) => row(
      [ev.time, ev.event, `${ev.sender ? `<${ev.sender}> → ` : ""}${ev.recipient || ""}`, ev.detail])));
  } catch (err) {
    $("history-rows").replaceChildren();
    say(err.message, true);
  }
});
$("retry-all").addEventListener("click", () => change("queueRetry", {}, "every queued recipient is due now", "queue"));

// ---- signing in and out -----------------------------------------------

function showSignin(error) {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = error;
  $("username").focus();
}

async function start(session) {
  state.csrf = session.csrf;
  state.username = session.username;
  try {
    await api("health");
  } catch (e) {
    showSignin(e.message);
    return;
  }
  $("me").textContent = state.username;
  $("signin").hidden = true;
  $("app").hidden = false;
  await show(location.hash.slice(1));
}

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("signin-error").textContent = "";
  const r = await fetch("/webmail/login", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("username").value, password: $("password").value }),
  });
  if (!r.ok) { $("signin-error").textContent = (await r.text()).trim(); return; }
  $("password").value = "";
  await start(await r.json());
});

$("signout").addEventListener("click", async () => {
  await fetch("/webmail/logout", { method: "POST", credentials: "same-origin", headers: { "X-Tern-CSRF": state.csrf } });
  state.csrf = "";
  showSignin("");
});

window.addEventListener("hashchange", () => { if (!$("app").hidden) show(location.hash.slice(1)); });

(async () => {
  const r = await fetch("/webmail/session", { credentials: "same-origin" });
  if (r.ok) await start(await r.json());
  else showSignin("");
})();
