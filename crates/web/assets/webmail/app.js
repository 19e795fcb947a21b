// Tern's webmail: a JMAP client (RFC 8620, RFC 8621) of its own server,
// in plain JavaScript modules served from the binary. The server keeps
// the session (an HttpOnly cookie); every change carries the session's
// CSRF token. Text from messages is only ever put in the page as text
// (textContent); a message's HTML is shown sanitized by the server in a
// sandboxed frame that may run nothing and load nothing remote until
// the reader allows its images.

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const state = {
  csrf: "", username: "", account: "", mailboxes: [], current: null,
  ids: [], position: 0, total: 0, selected: null, search: "",
  identities: [], uploads: [], draft: null, checked: new Set(),
  autosaved: null, savedText: "", autosaveTimer: null, listGen: 0,
};
const AUTOSAVE_MS = 15000;

// ---- the server -------------------------------------------------------

async function request(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== "GET") headers["X-Tern-CSRF"] = state.csrf;
  const r = await fetch(path, { credentials: "same-origin", ...options, headers });
  if (r.status === 401) { showSignin(); throw new Error("signed out"); }
  return r;
}

async function jmap(calls, using = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission", "urn:ietf:params:jmap:vacationresponse"]) {
  const r = await request("/jmap/api", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ using, methodCalls: calls }),
  });
  if (!r.ok) throw new Error(`the server said ${r.status}`);
  const out = (await r.json()).methodResponses;
  for (const [name, args] of out) {
    if (name === "error") throw new Error(args.description || args.type);
  }
  return out;
}

const call = async (name, args) => (await jmap([[name, { accountId: state.account, ...args }, "0"]]))[0][1];

function toast(text) {
  $("toast").textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { $("toast").textContent = ""; }, 4000);
}

// ---- signing in and out -----------------------------------------------

function showSignin() {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("username").focus();
}

async function start(session) {
  state.csrf = session.csrf;
  state.username = session.username;
  const s = await (await request("/.well-known/jmap")).json();
  state.account = s.primaryAccounts["urn:ietf:params:jmap:mail"];
  $("me").textContent = state.username;
  $("signin").hidden = true;
  $("app").hidden = false;
  await loadMailboxes();
  const inbox = state.mailboxes.find((m) => m.role === "inbox") || state.mailboxes[0];
  await openMailbox(inbox.id);
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
  await request("/webmail/logout", { method: "POST" });
  state.csrf = "";
  showSignin();
});

// ---- folders ----------------------------------------------------------

const ROLE_ORDER = ["inbox", "drafts", "sent", "junk", "trash", "archive"];

async function loadMailboxes() {
  const r = await call("Mailbox/get", { ids: null });
  state.mailboxes = r.list.sort((a, b) => {
    const ra = ROLE_ORDER.indexOf(a.role), rb = ROLE_ORDER.indexOf(b.role);
    return (ra < 0 ? 99 : ra) - (rb < 0 ? 99 : rb) || a.name.localeCompare(b.name);
  });
  const ul = $("folder-list");
  ul.replaceChildren();
  for (const m of state.mailboxes) {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = "#";
    a.dataset.id = m.id;
    a.setAttribute("aria-current", String(m.id === state.current));
    const name = document.createElement("span");
    name.textContent = m.name;
    a.append(name);
    if (m.unreadEmails) {
      const count = document.createElement("span");
      count.className = "count";
      count.textContent = m.unreadEmails;
      count.setAttribute("aria-label", `${m.unreadEmails} unread`);
      a.append(count);
    }
    a.addEventListener("click", (e) => { e.preventDefault(); $("folders").classList.remove("open"); openMailbox(m.id); });
    li.append(a);
    ul.append(li);
  }
}

const byRole = (role) => state.mailboxes.find((m) => m.role === role);

$("new-folder").addEventListener("click", async () => {
  const name = prompt("Folder name");
  if (!name) return;
  const r = await call("Mailbox/set", { create: { n: { name, parentId: null } } });
  if (r.notCreated) toast(`Not created: ${r.notCreated.n.description || r.notCreated.n.type}`);
  await loadMailboxes();
});

// Folders of the user's own (no role) can be renamed and deleted; a
// folder that still holds mail is not deleted (RFC 8621 §2.5).
function folderTools() {
  const m = state.mailboxes.find((x) => x.id === state.current);
  const own = !!m && !m.role && !state.search;
  $("rename-folder").hidden = !own;
  $("delete-folder").hidden = !own;
}

$("rename-folder").addEventListener("click", async () => {
  const m = state.mailboxes.find((x) => x.id === state.current);
  const name = m && prompt("New name", m.name);
  if (!name || name === m.name) return;
  const r = await call("Mailbox/set", { update: { [m.id]: { name } } });
  toast(r.notUpdated ? `Not renamed: ${r.notUpdated[m.id].description || r.notUpdated[m.id].type}` : `Renamed to ${name}`);
  await loadMailboxes();
});

$("delete-folder").addEventListener("click", async () => {
  const m = state.mailboxes.find((x) => x.id === state.current);
  if (!m || !confirm(`Delete the folder ${m.name}?`)) return;
  const r = await call("Mailbox/set", { destroy: [m.id], onDestroyRemoveEmails: false });
  if (r.notDestroyed) {
    const why = r.notDestroyed[m.id];
    toast(why.type === "mailboxHasEmail" ? "Move or delete its messages first" : `Not deleted: ${why.description || why.type}`);
    return;
  }
  toast(`Deleted ${m.name}`);
  await openMailbox(byRole("inbox").id);
});

$("menu").addEventListener("click", () => $("folders").classList.toggle("open"));

// ---- the message list -------------------------------------------------

function filter() {
  return state.search ? { text: state.search } : { inMailbox: state.current };
}

async function openMailbox(id) {
  state.current = id;
  state.search = "";
  $("search").value = "";
  await loadMailboxes();
  folderTools();
  await loadList(true);
}

// The list's order (RFC 8621 §4.4.2 sort properties).
const SORTS = {
  newest: [{ property: "receivedAt", isAscending: false }],
  oldest: [{ property: "receivedAt", isAscending: true }],
  from: [{ property: "from", isAscending: true }, { property: "receivedAt", isAscending: false }],
  subject: [{ property: "subject", isAscending: true }, { property: "receivedAt", isAscending: false }],
  size: [{ property: "size", isAscending: false }],
};

async function loadList(reset) {
  if (reset) { state.ids = []; state.position = 0; state.checked.clear(); $("message-list").replaceChildren(); state.listGen += 1; }
  // A list asked for again meanwhile (another sort, another folder) wins.
  const generation = state.listGen;
  const threads = $("threads").checked;
  const calls = [
    ["Email/query", { accountId: state.account, filter: filter(), sort: SORTS[$("sort").value] || SORTS.newest,
      collapseThreads: threads, position: state.position, limit: PAGE, calculateTotal: true }, "q"],
    ["Email/get", { accountId: state.account, "#ids": { resultOf: "q", name: "Email/query", path: "/ids" },
      properties: ["from", "subject", "receivedAt", "keywords", "preview", "hasAttachment", "mailboxIds", "threadId"] }, "g"],
  ];
  // In conversations, each row counts the messages of its thread.
  if (threads) calls.push(["Thread/get", { accountId: state.account,
    "#ids": { resultOf: "g", name: "Email/get", path: "/list/*/threadId" } }, "t"]);
  const out = await jmap(calls);
  if (generation !== state.listGen) return;
  const q = out[0][1], list = out[1][1].list;
  const sizes = new Map(threads ? out[2][1].list.map((t) => [t.id, t.emailIds.length]) : []);
  state.total = q.total;
  state.position += list.length;
  for (const e of list) {
    state.ids.push(e.id);
    $("message-list").append(row(e, sizes.get(e.threadId) || 1));
  }
  $("more").hidden = state.position >= state.total;
  const noun = threads ? "conversation" : "message";
  $("list-count").textContent = `${state.total} ${noun}${state.total === 1 ? "" : "s"}`;
  updateBulk();
}

function row(e, inThread = 1) {
  const li = document.createElement("li");
  li.dataset.id = e.id;
  li.tabIndex = 0;
  li.setAttribute("role", "option");
  li.setAttribute("aria-selected", "false");
  if (!e.keywords.$seen) li.classList.add("unread");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.setAttribute("aria-label", "Select");
  box.addEventListener("click", (ev) => {
    ev.stopPropagation();
    if (box.checked) state.checked.add(e.id); else state.checked.delete(e.id);
    updateBulk();
  });
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = (e.from && e.from[0]) ? (e.from[0].name || e.from[0].email) : "(no sender)";
  if (inThread > 1) {
    const n = document.createElement("span");
    n.className = "thread-count";
    n.textContent = ` (${inThread})`;
    n.setAttribute("aria-label", `, ${inThread} messages in the conversation`);
    who.append(n);
  }
  const when = document.createElement("time");
  when.className = "muted";
  when.dateTime = e.receivedAt;
  when.textContent = new Date(e.receivedAt).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  const subject = document.createElement("span");
  subject.className = "subject";
  subject.textContent = e.subject || "(no subject)";
  if (e.hasAttachment) {
    const clip = document.createElement("span");
    clip.className = "muted";
    clip.textContent = " · attachment";
    subject.append(clip);
  }
  const preview = document.createElement("span");
  preview.className = "preview";
  preview.textContent = e.preview || "";
  li.append(box, who, when, subject, preview);
  li.addEventListener("click", () => openMessage(e.id));
  li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") openMessage(e.id); });
  return li;
}

function updateBulk() {
  const n = state.checked.size;
  $("bulk-read").disabled = n === 0;
  $("bulk-delete").disabled = n === 0;
}

$("more").addEventListener("click", () => loadList(false));
for (const id of ["sort", "threads"]) {
  $(id).addEventListener("change", () => {
    localStorage.setItem(`tern-${id}`, id === "threads" ? String($(id).checked) : $(id).value);
    loadList(true);
  });
}
$("sort").value = localStorage.getItem("tern-sort") || "newest";
$("threads").checked = localStorage.getItem("tern-threads") === "true";
$("message-list").addEventListener("scroll", () => {
  const l = $("list-pane");
  if (!$("more").hidden && l.scrollTop + l.clientHeight > l.scrollHeight - 200) loadList(false);
});
$("select-all").addEventListener("change", () => {
  for (const li of $("message-list").children) {
    const box = li.querySelector("input");
    box.checked = $("select-all").checked;
    if (box.checked) state.checked.add(li.dataset.id); else state.checked.delete(li.dataset.id);
  }
  updateBulk();
});
$("bulk-read").addEventListener("click", async () => {
  const update = {};
  for (const id of state.checked) update[id] = { "keywords/$seen": true };
  await call("Email/set", { update });
  await openMailboxKeepSearch();
});
$("bulk-delete").addEventListener("click", async () => {
  await moveTo([...state.checked], byRole("trash"));
});

async function openMailboxKeepSearch() {
  await loadMailboxes();
  await loadList(true);
}

$("search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  state.search = $("search").value.trim();
  await loadList(true);
});

// ---- reading ----------------------------------------------------------

const READ_PROPERTIES = ["from", "to", "cc", "replyTo", "subject", "receivedAt", "sentAt", "keywords", "mailboxIds", "threadId", "blobId", "size",
  "messageId", "references", "textBody", "htmlBody", "attachments", "bodyValues", "header:Authentication-Results:asText",
  "header:Authentication-Results:asText:all", "bodyStructure"];

function verdict(results) {
  // Authentication-Results (RFC 8601) as a plain sentence.
  if (!results) return null;
  const text = results.toLowerCase();
  if (/dmarc=fail/.test(text)) return { bad: true, text: "Failed DMARC: possibly forged" };
  const signed = /dkim=pass[^;]*header\.d=([^\s;]+)/.exec(text);
  if (signed) return { bad: false, text: `Signed by ${signed[1]}` };
  if (/spf=fail/.test(text)) return { bad: true, text: "Sent from a server the sender's domain does not allow" };
  return null;
}

// A signed message (PGP/MIME, RFC 3156; S/MIME, RFC 8551): the server's
// check, the first x-pgp or smime result (it puts its own on top of
// every signed message).
function signatureVerdict(e) {
  if ((e.bodyStructure || {}).type !== "multipart/signed") return null;
  const field = (e["header:Authentication-Results:asText:all"] || []).find((v) => /(x-pgp|smime)=/i.test(v));
  const m = field && /(x-pgp|smime)=(\w+)\s+header\.from=(\S+)/i.exec(field);
  if (!m) return null;
  const [, method, result, from] = m;
  const kind = method.toLowerCase() === "smime" ? "S/MIME" : "OpenPGP";
  if (result === "pass") return { bad: false, text: `Signed by ${from} (${kind}), verified` };
  if (result === "fail") return { bad: true, text: `${kind} signature invalid: the message may have been changed` };
  return { bad: false, text: `Signed with ${kind} by ${from}; not verified (${(/\(([^)]*)\)/.exec(field) || [, "no key"])[1]})` };
}

async function openMessage(id) {
  state.selected = id;
  for (const li of $("message-list").children) li.setAttribute("aria-selected", String(li.dataset.id === id));
  const r = await call("Email/get", { ids: [id], properties: READ_PROPERTIES, fetchTextBodyValues: true,
    bodyProperties: ["partId", "blobId", "type", "name", "size", "disposition", "cid"] });
  const e = r.list[0];
  if (!e) return;
  if (!e.keywords.$seen) {
    await call("Email/set", { update: { [id]: { "keywords/$seen": true } } });
    const li = [...$("message-list").children].find((x) => x.dataset.id === id);
    if (li) li.classList.remove("unread");
    loadMailboxes();
  }
  renderMessage(e);
  showConversation(e);
}

// The other messages of the message's thread, oldest first, each a link.
async function showConversation(e) {
  const out = await jmap([
    ["Thread/get", { accountId: state.account, ids: [e.threadId] }, "t"],
    ["Email/get", { accountId: state.account, "#ids": { resultOf: "t", name: "Thread/get", path: "/list/*/emailIds" },
      properties: ["from", "subject", "receivedAt"] }, "g"],
  ]);
  const others = out[1][1].list;
  if (others.length < 2 || state.selected !== e.id) return;
  const nav = document.createElement("nav");
  nav.className = "conversation";
  nav.setAttribute("aria-label", "Conversation");
  const title = document.createElement("h3");
  title.textContent = `${others.length} messages in this conversation`;
  const ol = document.createElement("ol");
  for (const m of others) {
    const li = document.createElement("li");
    const label = `${(m.from && m.from[0]) ? (m.from[0].name || m.from[0].email) : "(no sender)"}, ${new Date(m.receivedAt).toLocaleString([], { dateStyle: "short", timeStyle: "short" })}`;
    if (m.id === e.id) {
      li.textContent = `${label} (this message)`;
      li.setAttribute("aria-current", "true");
    } else {
      li.append(button(label, () => openMessage(m.id)));
    }
    ol.append(li);
  }
  nav.append(title, ol);
  $("reader").querySelector(".headers")?.after(nav);
}

function addresses(list) {
  return (list || []).map((a) => a.name ? `${a.name} <${a.email}>` : a.email).join(", ");
}

function button(label, action, title) {
  const b = document.createElement("button");
  b.textContent = label;
  if (title) b.title = title;
  b.addEventListener("click", action);
  return b;
}

function renderMessage(e) {
  const reader = $("reader");
  reader.classList.remove("closed");
  reader.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = e.subject || "(no subject)";
  const head = document.createElement("div");
  head.className = "headers";
  for (const [label, value] of [["From", addresses(e.from)], ["To", addresses(e.to)], ["Cc", addresses(e.cc)],
    ["Date", new Date(e.sentAt || e.receivedAt).toLocaleString()]]) {
    if (!value) continue;
    const line = document.createElement("div");
    line.textContent = `${label}: ${value}`;
    head.append(line);
  }
  reader.append(h, head);
  for (const v of [verdict(e["header:Authentication-Results:asText"]), signatureVerdict(e)]) {
    if (!v) continue;
    const badge = document.createElement("div");
    badge.className = v.bad ? "verdict bad" : "verdict";
    badge.textContent = v.text;
    reader.append(badge);
  }
  const tools = document.createElement("div");
  tools.className = "tools";
  const moveSelect = document.createElement("select");
  moveSelect.setAttribute("aria-label", "Move to folder");
  moveSelect.append(new Option("Move to…", ""));
  for (const m of state.mailboxes) moveSelect.append(new Option(m.name, m.id));
  moveSelect.addEventListener("change", () => moveSelect.value && moveTo([e.id], state.mailboxes.find((m) => m.id === moveSelect.value)));
  const inJunk = byRole("junk") && e.mailboxIds[byRole("junk").id];
  tools.append(
    button("Reply", () => compose(replyDraft(e, false)), "Reply (r)"),
    button("Reply all", () => compose(replyDraft(e, true))),
    button("Forward", () => compose(forwardDraft(e))),
    button("Forward as attachment", () => compose(forwardAttachedDraft(e))),
    button("Delete", () => moveTo([e.id], byRole("trash")), "Delete (#)"),
    button(inJunk ? "Not spam" : "Spam", () => moveTo([e.id], inJunk ? byRole("inbox") : byRole("junk"))),
    button(e.keywords.$flagged ? "Unflag" : "Flag", async () => {
      await call("Email/set", { update: { [e.id]: { "keywords/$flagged": e.keywords.$flagged ? null : true } } });
      openMessage(e.id);
    }),
    button("Mark unread", async () => {
      await call("Email/set", { update: { [e.id]: { "keywords/$seen": null } } });
      openMailboxKeepSearch();
    }),
    moveSelect,
  );
  reader.append(tools);
  const html = (e.htmlBody || []).some((p) => p.type === "text/html");
  if (html) {
    reader.append(htmlFrame(`/webmail/html/${encodeURIComponent(e.id)}`, tools, sender(e)));
  } else {
    const pre = document.createElement("div");
    pre.className = "body-text";
    pre.textContent = (e.textBody || []).map((p) => (e.bodyValues[p.partId] || {}).value || "").join("\n");
    reader.append(pre);
  }
  const sealed = (e.attachments || []).find((a) => /^application\/(x-)?pkcs7-mime$/.test(a.type) && a.name !== "smime.p7s");
  if (sealed) decryptTools(sealed, tools);
  const files = (e.attachments || []).filter((a) => a.disposition !== "inline" || !a.cid);
  if (files.length) {
    const list = document.createElement("div");
    list.className = "attachments";
    for (const a of files) {
      const link = document.createElement("a");
      const name = a.name || "attachment";
      link.href = `/jmap/download/${state.account}/${encodeURIComponent(a.blobId)}/${encodeURIComponent(name)}?accept=${encodeURIComponent(a.type)}`;
      link.download = name;
      link.textContent = `${name} (${Math.ceil((a.size || 0) / 1024)} KB)`;
      if (/^image\/(png|jpeg|gif|webp)$/.test(a.type)) {
        const img = document.createElement("img");
        img.src = link.href;
        img.alt = name;
        link.prepend(img);
      }
      list.append(link);
      if (a.type === "message/rfc822") list.append(button("Read attached message", () => readAttached(a.blobId, list)));
    }
    reader.append(list);
  }
  reader.focus();
}

// Remote images are shown for the senders the reader chose (kept in this
// browser only).
const IMAGES_KEY = "tern-images-from";
const imageSenders = () => JSON.parse(localStorage.getItem(IMAGES_KEY) || "[]");
const sender = (e) => ((e.from || [])[0] || {}).email?.toLowerCase() || "";

// A message's HTML, sanitized by the server, in a frame that may run
// nothing (no scripts, no same-origin access, no forms; links open
// outside); its remote images on the reader's word.
function htmlFrame(url, tools, from) {
  const frame = document.createElement("iframe");
  frame.className = "body-frame";
  frame.title = "Message";
  frame.setAttribute("sandbox", "allow-popups allow-popups-to-escape-sandbox");
  frame.setAttribute("referrerpolicy", "no-referrer");
  const trusted = from && imageSenders().includes(from);
  frame.src = trusted ? `${url}?images=1` : url;
  if (!trusted) request(url, { method: "HEAD" }).then((r) => {
    if (r.headers.get("X-Tern-Remote-Images") !== "blocked") return;
    const show = button("Show remote images", () => { frame.src = `${url}?images=1`; show.remove(); always?.remove(); });
    const always = from && button(`Always show images from ${from}`, () => {
      localStorage.setItem(IMAGES_KEY, JSON.stringify([...new Set([...imageSenders(), from])].slice(-500)));
      frame.src = `${url}?images=1`; show.remove(); always.remove();
    });
    tools.append(...[show, always].filter(Boolean));
  });
  return frame;
}

// A message attached to this one (message/rfc822), read with Email/parse
// and shown under it: its headers and text, as text.
async function readAttached(blobId, after) {
  const r = await call("Email/parse", { blobIds: [blobId], fetchTextBodyValues: true,
    properties: ["from", "to", "subject", "sentAt", "textBody", "htmlBody", "bodyValues"] });
  const e = r.parsed && r.parsed[blobId];
  const section = document.createElement("section");
  section.className = "attached";
  section.setAttribute("aria-label", "Attached message");
  if (!e) {
    section.textContent = "The attached message could not be read.";
  } else {
    const h = document.createElement("h3");
    h.textContent = e.subject || "(no subject)";
    const head = document.createElement("div");
    head.className = "headers";
    head.textContent = `From: ${addresses(e.from)} · To: ${addresses(e.to)}`;
    const tools = document.createElement("div");
    tools.className = "tools";
    section.append(h, head, tools);
    if ((e.htmlBody || []).some((p) => p.type === "text/html")) {
      section.append(htmlFrame(`/webmail/html/attached/${encodeURIComponent(blobId)}`, tools, sender(e)));
    } else {
      const body = document.createElement("div");
      body.className = "body-text";
      body.textContent = (e.textBody || []).map((p) => (e.bodyValues[p.partId] || {}).value || "").join("\n")
        || "(no text part; download it to read it)";
      section.append(body);
    }
  }
  after.after(section);
}

async function moveTo(ids, mailbox) {
  if (!mailbox || !ids.length) return;
  const update = {};
  for (const id of ids) update[id] = { mailboxIds: { [mailbox.id]: true } };
  const r = await call("Email/set", { update });
  if (r.notUpdated) toast("Some messages could not be moved");
  else toast(`Moved to ${mailbox.name}`);
  $("reader").replaceChildren();
  await openMailboxKeepSearch();
}

// ---- writing ----------------------------------------------------------

function quote(e) {
  const text = (e.textBody || []).map((p) => (e.bodyValues[p.partId] || {}).value || "").join("\n");
  const who = e.from && e.from[0] ? (e.from[0].name || e.from[0].email) : "someone";
  return `\n\nOn ${new Date(e.sentAt || e.receivedAt).toLocaleString()}, ${who} wrote:\n` + text.split("\n").map((l) => `> ${l}`).join("\n");
}

function replyDraft(e, all) {
  const to = (e.replyTo && e.replyTo.length ? e.replyTo : e.from) || [];
  const cc = all ? [...(e.to || []), ...(e.cc || [])].filter((a) => a.email !== state.username) : [];
  return {
    to: addresses(to), cc: addresses(cc),
    subject: /^re:/i.test(e.subject || "") ? e.subject : `Re: ${e.subject || ""}`,
    body: quote(e), inReplyTo: e.messageId, references: [...(e.references || []), ...(e.messageId || [])],
  };
}

function forwardDraft(e) {
  return {
    to: "", cc: "", subject: `Fwd: ${e.subject || ""}`,
    body: `\n\n---------- Forwarded message ----------\nFrom: ${addresses(e.from)}\nSubject: ${e.subject || ""}\n\n` +
      (e.textBody || []).map((p) => (e.bodyValues[p.partId] || {}).value || "").join("\n"),
    attachments: (e.attachments || []).map((a) => ({ blobId: a.blobId, type: a.type, name: a.name || "attachment", size: a.size })),
  };
}

// Forward as attachment: the original whole, as message/rfc822 (RFC 2046 §5.2.1).
function forwardAttachedDraft(e) {
  const name = `${(e.subject || "message").replace(/[\\/:*?"<>|]/g, "_").slice(0, 60)}.eml`;
  return {
    to: "", cc: "", subject: `Fwd: ${e.subject || ""}`, body: "",
    attachments: [{ blobId: e.blobId, type: "message/rfc822", name, size: e.size }],
  };
}

async function compose(draft = {}) {
  if (!state.identities.length) {
    state.identities = (await call("Identity/get", { ids: null })).list;
    $("c-from").replaceChildren(...state.identities.map((i) => new Option(i.name ? `${i.name} <${i.email}>` : i.email, i.id)));
  }
  $("c-to").value = draft.to || "";
  $("c-cc").value = draft.cc || "";
  $("c-subject").value = draft.subject || "";
  $("c-body").value = draft.body || "";
  $("compose-error").textContent = "";
  await showSmimeChoices();
  state.uploads = (draft.attachments || []).slice();
  state.draft = draft;
  state.autosaved = null;
  state.savedText = composeText();
  renderUploads();
  loadCorrespondents();
  $("compose").showModal();
  clearInterval(state.autosaveTimer);
  state.autosaveTimer = setInterval(() => saveDraft(), AUTOSAVE_MS);
  (draft.to ? $("c-body") : $("c-to")).focus();
}

async function loadCorrespondents() {
  // Address completion from the people in the last messages.
  const r = await jmap([
    ["Email/query", { accountId: state.account, sort: [{ property: "receivedAt", isAscending: false }], limit: 200 }, "q"],
    ["Email/get", { accountId: state.account, "#ids": { resultOf: "q", name: "Email/query", path: "/ids" }, properties: ["from", "to"] }, "g"],
  ]);
  const seen = new Map();
  for (const e of r[1][1].list) for (const a of [...(e.from || []), ...(e.to || [])]) if (a.email !== state.username) seen.set(a.email, a);
  $("c-addresses").replaceChildren(...[...seen.values()].map((a) => new Option(a.name ? `${a.name} <${a.email}>` : a.email)));
}

function parseAddresses(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const m = /^(.*)<([^>]+)>$/.exec(s);
    return m ? { name: m[1].trim().replace(/^"|"$/g, "") || null, email: m[2].trim() } : { name: null, email: s };
  });
}

function renderUploads() {
  $("c-attachments").replaceChildren(...state.uploads.map((u, i) => {
    const li = document.createElement("li");
    li.textContent = `${u.name} (${Math.ceil((u.size || 0) / 1024)} KB) `;
    if (u.progress !== undefined && !u.blobId) {
      const p = document.createElement("progress");
      p.max = 1; p.value = u.progress;
      li.append(p);
    }
    li.append(button("Remove", () => { state.uploads.splice(i, 1); renderUploads(); }));
    return li;
  }));
}

function upload(file) {
  // XMLHttpRequest for its upload progress events.
  const entry = { name: file.name, type: file.type || "application/octet-stream", size: file.size, progress: 0 };
  state.uploads.push(entry);
  renderUploads();
  return new Promise((resolve) => {
    const x = new XMLHttpRequest();
    x.open("POST", `/jmap/upload/${state.account}/`);
    x.setRequestHeader("Content-Type", entry.type);
    x.setRequestHeader("X-Tern-CSRF", state.csrf);
    x.upload.onprogress = (ev) => { entry.progress = ev.loaded / ev.total; renderUploads(); };
    x.onload = () => {
      if (x.status === 201) entry.blobId = JSON.parse(x.responseText).blobId;
      else { toast(`${file.name} was not uploaded`); state.uploads.splice(state.uploads.indexOf(entry), 1); }
      renderUploads();
      resolve();
    };
    x.onerror = () => { toast(`${file.name} was not uploaded`); resolve(); };
    x.send(file);
  });
}

$("c-files").addEventListener("change", () => { for (const f of $("c-files").files) upload(f); $("c-files").value = ""; });
$("c-drop").addEventListener("dragover", (e) => { e.preventDefault(); $("c-drop").classList.add("over"); });
$("c-drop").addEventListener("dragleave", () => $("c-drop").classList.remove("over"));
$("c-drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("c-drop").classList.remove("over");
  for (const f of e.dataTransfer.files) upload(f);
});

function draftEmail(keywords, mailbox) {
  const identity = state.identities.find((i) => i.id === $("c-from").value) || state.identities[0];
  const email = {
    mailboxIds: { [mailbox.id]: true }, keywords,
    from: [{ name: identity.name || null, email: identity.email }],
    to: parseAddresses($("c-to").value), subject: $("c-subject").value,
    textBody: [{ partId: "body", type: "text/plain" }],
    bodyValues: { body: { value: $("c-body").value } },
    attachments: state.uploads.filter((u) => u.blobId).map((u) => ({ blobId: u.blobId, type: u.type, name: u.name })),
  };
  const cc = parseAddresses($("c-cc").value);
  if (cc.length) email.cc = cc;
  if (state.draft && state.draft.inReplyTo) { email.inReplyTo = state.draft.inReplyTo; email.references = state.draft.references; }
  return { email, identity };
}

async function send() {
  if (state.uploads.some((u) => !u.blobId)) { $("compose-error").textContent = "Wait for the uploads to finish."; return false; }
  const drafts = byRole("drafts"), sent = byRole("sent");
  const { email, identity } = draftEmail({ $draft: true, $seen: true }, drafts);
  if (!$("c-smime").hidden && ($("c-sign").checked || $("c-encrypt").checked)) {
    try {
      await sendProtected(identity, drafts, sent);
    } catch (err) {
      $("compose-error").textContent = `Not sent: ${err.message}`;
      return false;
    }
    if (state.autosaved) await call("Email/set", { destroy: [state.autosaved] });
    stopAutosave();
    toast("Sent");
    return true;
  }
  const out = await jmap([
    ["Email/set", { accountId: state.account, create: { m: email } }, "c"],
    ["EmailSubmission/set", { accountId: state.account, create: { s: { identityId: identity.id, emailId: "#m" } },
      onSuccessUpdateEmail: { "#s": { [`mailboxIds/${drafts.id}`]: null, [`mailboxIds/${sent.id}`]: true, "keywords/$draft": null } } }, "s"],
  ]);
  const created = out[0][1], submitted = out[1][1];
  const failed = (created.notCreated && created.notCreated.m) || (submitted.notCreated && submitted.notCreated.s);
  if (failed) { $("compose-error").textContent = `Not sent: ${failed.description || failed.type}`; return false; }
  if (state.autosaved) await call("Email/set", { destroy: [state.autosaved] });
  stopAutosave();
  toast("Sent");
  return true;
}

// ---- S/MIME (smime.js; the private key stays in this browser) -------

let smimeModule = null;
const smime = async () => (smimeModule ||= await import("/webmail/smime.js"));

async function showSmimeChoices() {
  const identity = state.identities.find((i) => i.id === $("c-from").value) || state.identities[0];
  const here = identity && (await smime()).hasKey(identity.email);
  $("c-smime").hidden = !here;
  $("c-sign").checked = false;
  $("c-encrypt").checked = false;
  $("c-passphrase").value = "";
}
$("c-from").addEventListener("change", showSmimeChoices);

/// A header field value with non-ASCII text as RFC 2047 encoded words.
function headerText(text) {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const bytes = new TextEncoder().encode(text);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return `=?UTF-8?B?${btoa(s)}?=`;
}

function mailbox(a) {
  if (!a.name) return a.email;
  const name = /^[\x20-\x7e]*$/.test(a.name) ? `"${a.name.replace(/["\\]/g, "\\$&")}"` : headerText(a.name);
  return `${name} <${a.email}>`;
}

/// The message signed and/or encrypted here, then stored and sent as it
/// is (Email/import, EmailSubmission): the server never sees the private
/// key, and with encryption never the text.
async function sendProtected(identity, drafts, sent) {
  const s = await smime();
  const to = parseAddresses($("c-to").value), cc = parseAddresses($("c-cc").value);
  const unlocked = await s.unlock(identity.email, $("c-passphrase").value);
  // The attachments go inside what is signed and encrypted.
  const attachments = [];
  for (const u of state.uploads.filter((x) => x.blobId)) {
    const r = await request(`/jmap/download/${state.account}/${encodeURIComponent(u.blobId)}/file`);
    if (!r.ok) throw new Error(`${u.name} could not be read back`);
    attachments.push({ type: u.type, name: u.name, bytes: new Uint8Array(await r.arrayBuffer()) });
  }
  let entity = s.mixedEntity(s.textEntity($("c-body").value), attachments);
  if ($("c-sign").checked) entity = await s.sign(entity, unlocked);
  if ($("c-encrypt").checked) {
    const wanted = [...to, ...cc].map((a) => a.email);
    const r = await request("/webmail/keys/find", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ addresses: wanted }),
    });
    const found = (await r.json()).certificates || {};
    const missing = wanted.filter((a) => !found[a]);
    if (missing.length) throw new Error(`no certificate found for ${missing.join(", ")}: send without encryption, or ask them to publish one`);
    const own = btoa(String.fromCharCode(...new Uint8Array(unlocked.certificate.toSchema().toBER())));
    entity = await s.encrypt(entity, [...wanted.map((a) => found[a]), own]);
  }
  const domain = identity.email.split("@")[1];
  const lines = [
    `From: ${mailbox({ name: identity.name, email: identity.email })}`,
    `To: ${to.map(mailbox).join(", ")}`,
    ...(cc.length ? [`Cc: ${cc.map(mailbox).join(", ")}`] : []),
    `Subject: ${headerText($("c-subject").value)}`,
    `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <${crypto.randomUUID()}@${domain}>`,
  ];
  if (state.draft && state.draft.inReplyTo) {
    lines.push(`In-Reply-To: ${state.draft.inReplyTo.map((id) => `<${id}>`).join(" ")}`);
    if (state.draft.references) lines.push(`References: ${state.draft.references.map((id) => `<${id}>`).join(" ")}`);
  }
  const raw = `${lines.join("\r\n")}\r\nMIME-Version: 1.0\r\n${entity}`;
  const uploaded = await request(`/jmap/upload/${state.account}/`, {
    method: "POST", headers: { "Content-Type": "message/rfc822" }, body: s.octets(raw),
  });
  if (!uploaded.ok) throw new Error(`the server said ${uploaded.status}`);
  const { blobId } = await uploaded.json();
  const imported = await call("Email/import", {
    emails: { m: { blobId, mailboxIds: { [drafts.id]: true }, keywords: { $draft: true, $seen: true } } },
  });
  const id = imported.created && imported.created.m && imported.created.m.id;
  if (!id) throw new Error(((imported.notCreated || {}).m || {}).description || "the message was not stored");
  const out = await jmap([
    ["EmailSubmission/set", { accountId: state.account, create: { s: { identityId: identity.id, emailId: id } },
      onSuccessUpdateEmail: { "#s": { [`mailboxIds/${drafts.id}`]: null, [`mailboxIds/${sent.id}`]: true, "keywords/$draft": null } } }, "s"],
  ]);
  const failed = out[0][1].notCreated && out[0][1].notCreated.s;
  if (failed) throw new Error(failed.description || failed.type);
}

/// An enveloped-data message (`part`: its application/pkcs7-mime body)
/// decrypted here with the user's key, its text shown under `after`.
function decryptTools(part, after) {
  const box = document.createElement("div");
  box.className = "tools";
  const label = document.createElement("label");
  label.textContent = "Passphrase of your S/MIME key";
  label.htmlFor = "d-passphrase";
  const input = document.createElement("input");
  input.type = "password";
  input.id = "d-passphrase";
  input.autocomplete = "off";
  const shown = document.createElement("div");
  shown.className = "body-text";
  shown.id = "decrypted";
  box.append(label, input, button("Decrypt", async () => {
    shown.textContent = "";
    try {
      const s = await smime();
      const unlocked = await s.unlock(state.username, input.value);
      const r = await request(`/jmap/download/${state.account}/${encodeURIComponent(part.blobId)}/smime.p7m`);
      const inner = await s.decrypt(new Uint8Array(await r.arrayBuffer()), unlocked);
      shown.textContent = s.readableText(inner) || "(no text part)";
    } catch (err) {
      shown.textContent = `Not decrypted: ${err.message}`;
    }
  }));
  after.after(box, shown);
}

$("s-import").addEventListener("click", async () => {
  $("s-error").textContent = "";
  const file = $("s-file").files[0];
  if (!file) { $("s-error").textContent = "Choose your .p12 file first."; return; }
  try {
    await (await smime()).importKey(state.username, new Uint8Array(await file.arrayBuffer()), $("s-passphrase").value);
  } catch (err) {
    $("s-error").textContent = err.message;
    return;
  }
  $("s-passphrase").value = "";
  $("s-file").value = "";
  toast("Your S/MIME key is kept in this browser");
  smimeStatus();
});
$("s-forget").addEventListener("click", async () => {
  (await smime()).forgetKey(state.username);
  smimeStatus();
});

async function smimeStatus() {
  const here = (await smime()).hasKey(state.username);
  $("s-status").textContent = here
    ? `This browser keeps your S/MIME key for ${state.username}, encrypted with its passphrase: you can sign, encrypt and decrypt.`
    : "No S/MIME key in this browser.";
  $("s-forget").hidden = !here;
}

$("compose-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (await send()) { $("compose").close(); openMailboxKeepSearch(); }
});
// Drafts save themselves while being written, and when the window is
// closed without sending; each save replaces the one before.
function composeText() {
  return JSON.stringify([$("c-to").value, $("c-cc").value, $("c-subject").value, $("c-body").value,
    state.uploads.map((u) => u.blobId)]);
}

async function saveDraft() {
  if (composeText() === state.savedText) return true;
  const { email } = draftEmail({ $draft: true, $seen: true }, byRole("drafts"));
  const r = await call("Email/set", { create: { d: email }, destroy: state.autosaved ? [state.autosaved] : [] });
  if (r.notCreated) return false;
  state.autosaved = r.created.d.id;
  state.savedText = composeText();
  return true;
}

function stopAutosave() {
  clearInterval(state.autosaveTimer);
  state.autosaveTimer = null;
}

$("c-save").addEventListener("click", async () => {
  if (!(await saveDraft())) { $("compose-error").textContent = "The draft was not saved."; return; }
  stopAutosave();
  toast("Draft saved");
  $("compose").close();
  openMailboxKeepSearch();
});
$("compose").addEventListener("cancel", async () => {
  // Escape: keep what was written.
  stopAutosave();
  if (await saveDraft()) toast("Draft saved");
});
$("c-cancel").addEventListener("click", async () => {
  stopAutosave();
  if (state.autosaved) await call("Email/set", { destroy: [state.autosaved] });
  $("compose").close();
});
$("compose-button").addEventListener("click", () => compose());

// ---- settings ---------------------------------------------------------

// What the settings show, read again (without opening the dialog: one
// closed meanwhile stays closed).
async function refreshSettings() {
  const v = (await call("VacationResponse/get", { ids: ["singleton"] })).list[0] || {};
  $("v-enabled").checked = !!v.isEnabled;
  $("v-subject").value = v.subject || "";
  $("v-body").value = v.textBody || "";
  const sessions = (await (await request("/webmail/sessions")).json()).sessions;
  $("sessions").replaceChildren(...sessions.map((s) => {
    const li = document.createElement("li");
    li.textContent = `${s.client}, signed in ${Math.round(s.signedInSecondsAgo / 60)} min ago${s.current ? " (this browser)" : ""} `;
    if (!s.current) li.append(button("End", async () => {
      await request("/webmail/sessions/end", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ id: s.id }) });
      refreshSettings();
    }));
    return li;
  }));
  await loadFilters();
  await loadKeys();
  await smimeStatus();
}

async function openSettings() {
  await refreshSettings();
  if (!$("settings").open) $("settings").showModal();
}

$("p-change").addEventListener("click", async () => {
  $("p-error").textContent = "";
  if ($("p-new").value !== $("p-repeat").value) { $("p-error").textContent = "The new passwords differ."; return; }
  const r = await request("/webmail/password", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ current: $("p-current").value, new: $("p-new").value }),
  });
  if (!r.ok) { $("p-error").textContent = (await r.text()).trim(); return; }
  for (const id of ["p-current", "p-new", "p-repeat"]) $(id).value = "";
  toast("Password changed; other browsers were signed out");
  refreshSettings();
});

// Filters: simple rules the server writes as a Sieve script.
const FIELDS = [["from", "From"], ["to", "To or Cc"], ["subject", "Subject"]];
const TESTS = [["contains", "contains"], ["notContains", "does not contain"], ["is", "is"]];
const THENS = [["move", "move to folder"], ["markRead", "mark as read"], ["flag", "flag"], ["delete", "delete"], ["forward", "forward to"]];

function choice(options, value, label, cls) {
  const s = document.createElement("select");
  s.className = cls;
  s.setAttribute("aria-label", label);
  for (const [v, text] of options) s.append(new Option(text, v, false, v === value));
  return s;
}

function ruleItem(rule) {
  const li = document.createElement("li");
  const value = Object.assign(document.createElement("input"), { type: "text", className: "f-value", value: rule.value || "" });
  const target = Object.assign(document.createElement("input"), { type: "text", className: "f-target", value: rule.target || "" });
  const then = choice(THENS, rule.then || "move", "then", "f-then");
  const stop = Object.assign(document.createElement("input"), { type: "checkbox", className: "f-stop", checked: rule.stop !== false });
  const stopLabel = document.createElement("label");
  stopLabel.append(stop, " and stop");
  const showTarget = () => {
    target.hidden = !["move", "forward"].includes(then.value);
    target.placeholder = then.value === "move" ? "Folder" : "Address";
  };
  then.addEventListener("change", showTarget);
  showTarget();
  li.append("When", choice(FIELDS, rule.field || "subject", "header", "f-field"),
    choice(TESTS, rule.test || "contains", "comparison", "f-test"), value, then, target, stopLabel,
    button("Remove", () => li.remove()));
  value.setAttribute("aria-label", "Text to look for");
  target.setAttribute("aria-label", "Folder or address");
  return li;
}

function readRules() {
  return [...$("f-rules").children].map((li) => ({
    field: li.querySelector(".f-field").value, test: li.querySelector(".f-test").value,
    value: li.querySelector(".f-value").value, then: li.querySelector(".f-then").value,
    target: li.querySelector(".f-target").value, stop: li.querySelector(".f-stop").checked,
  }));
}

async function loadFilters() {
  const f = await (await request("/webmail/filters")).json();
  $("f-rules").replaceChildren(...f.rules.map(ruleItem));
  $("f-error").textContent = "";
  $("f-note").textContent = f.editedElsewhere
    ? "Your filters were changed by another mail client; saving here replaces them."
    : f.active && f.active !== "webmail-filters"
      ? `Another mail client's filter script (${f.active}) is active; saving here replaces it.`
      : "Rules run on new mail as it arrives, in order.";
}

async function saveFilters(replace = false) {
  $("f-error").textContent = "";
  const r = await request("/webmail/filters/save", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ rules: readRules(), replace }),
  });
  const body = await r.json().catch(() => ({}));
  if (r.status === 409 && confirm(`${body.error}. Replace it?`)) return saveFilters(true);
  if (!r.ok) { $("f-error").textContent = body.error || `the server said ${r.status}`; return; }
  toast(`Filters saved (${body.saved} rule${body.saved === 1 ? "" : "s"})`);
  loadFilters();
}

$("f-add").addEventListener("click", () => {
  const li = ruleItem({});
  $("f-rules").append(li);
  li.querySelector(".f-value").focus();
});
$("f-save").addEventListener("click", () => saveFilters());

// Public keys: published from a file, withdrawn; the server checks that a
// key names this address and is not a private one.
async function loadKeys() {
  const answer = await (await request("/webmail/keys")).json();
  const keys = answer.keys;
  $("k-encrypt").checked = answer.encryptAtRest;
  $("k-list").replaceChildren(...keys.map((k) => {
    const li = document.createElement("li");
    li.textContent = `${k.kind === "openpgp" ? "OpenPGP" : "S/MIME"} ${k.fingerprint} `;
    li.append(button("Withdraw", async () => {
      await request("/webmail/keys/withdraw", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ kind: k.kind }) });
      loadKeys();
    }));
    return li;
  }));
}

$("k-encrypt").addEventListener("change", async () => {
  $("k-error").textContent = "";
  const r = await request("/webmail/keys/encrypt", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ on: $("k-encrypt").checked }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { $("k-error").textContent = body.error || `the server said ${r.status}`; $("k-encrypt").checked = false; return; }
  toast(body.encryptAtRest ? "New mail will be stored encrypted" : "New mail will be stored as it comes");
});

$("k-file").addEventListener("change", async () => {
  const file = $("k-file").files[0];
  if (!file) return;
  $("k-error").textContent = "";
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  const r = await request("/webmail/keys/publish", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ data: btoa(binary) }),
  });
  const body = await r.json().catch(() => ({}));
  $("k-file").value = "";
  if (!r.ok) { $("k-error").textContent = body.error || `the server said ${r.status}`; return; }
  toast(`Published your ${body.kind === "openpgp" ? "OpenPGP key" : "certificate"}`);
  loadKeys();
});

$("settings-button").addEventListener("click", openSettings);
$("settings-close").addEventListener("click", () => $("settings").close());
$("settings-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await call("VacationResponse/set", { update: { singleton: {
    isEnabled: $("v-enabled").checked, subject: $("v-subject").value || null, textBody: $("v-body").value || null } } });
  if (r.notUpdated) { toast("Not saved"); return; }
  toast("Settings saved");
  $("settings").close();
});

// ---- keys -------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  if ($("app").hidden || e.target.closest("input, textarea, select, dialog")) return;
  const ids = [...$("message-list").children].map((li) => li.dataset.id);
  const at = ids.indexOf(state.selected);
  if (e.key === "j" && at + 1 < ids.length) openMessage(ids[at + 1]);
  else if (e.key === "k" && at > 0) openMessage(ids[at - 1]);
  else if (e.key === "c") { e.preventDefault(); compose(); }
  else if (e.key === "/") { e.preventDefault(); $("search").focus(); }
  else if (e.key === "#" && state.selected) moveTo([state.selected], byRole("trash"));
  else if (e.key === "r" && state.selected) call("Email/get", { ids: [state.selected], properties: READ_PROPERTIES, fetchTextBodyValues: true })
    .then((r) => compose(replyDraft(r.list[0], false)));
});

// ---- start ------------------------------------------------------------

(async () => {
  const r = await fetch("/webmail/session", { credentials: "same-origin" });
  if (r.ok) await start(await r.json());
  else showSignin();
})();
