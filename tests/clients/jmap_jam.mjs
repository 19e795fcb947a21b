// A JMAP session as the jmap-jam client (npm, MIT) runs it against Tern,
// signed in with a bearer token: the session, the inbox by role, a query
// and a get in one request by result reference, a keyword set, a blob
// upload. Prints one JSON object of what it saw.
// Usage: node jmap_jam.mjs SESSION_URL TOKEN
import JamClient from "jmap-jam";

const [sessionUrl, bearerToken] = process.argv.slice(2);
const jam = new JamClient({ sessionUrl, bearerToken });
const accountId = await jam.getPrimaryAccount();
const [inbox] = await jam.api.Mailbox.query({ accountId, filter: { role: "inbox" } });
const [found] = await jam.requestMany((t) => {
  const query = t.Email.query({
    accountId,
    filter: { inMailbox: inbox.ids[0] },
    sort: [{ property: "receivedAt", isAscending: false }],
  });
  const get = t.Email.get({
    accountId,
    ids: query.$ref("/ids"),
    properties: ["subject", "from", "keywords"],
  });
  return { query, get };
});
const first = found.get.list[0];
const [set] = await jam.api.Email.set({
  accountId,
  update: { [first.id]: { "keywords/$flagged": true } },
});
const upload = await jam.uploadBlob(accountId, new Blob(["hello from jam"], { type: "text/plain" }));
console.log(JSON.stringify({
  accountId,
  total: found.query.ids.length,
  subject: first.subject,
  from: first.from,
  updated: Object.keys(set.updated ?? {}),
  upload,
}));
