// S/MIME in the browser (RFC 8551): the user's private key never leaves
// it. It is imported as a PKCS #12 file and kept as that file, which its
// passphrase encrypts, in this browser's storage; each use asks for the
// passphrase. Signing makes multipart/signed (§3.5.3, CMS SignedData of
// RFC 5652 §5 with signed attributes), encrypting makes enveloped-data
// (§3.3, AES-256-CBC; RSA key transport or ECDH key agreement, as the
// recipient's certificate says), both with PKI.js (BSD-3-Clause, vendored
// in vendor/pkijs.js with its licences) over the browser's WebCrypto.
// PKI.js is loaded only when first needed.

const DATA = "1.2.840.113549.1.7.1";
const KEY_BAG = "1.2.840.113549.1.12.10.1.2";
const CERT_BAG = "1.2.840.113549.1.12.10.1.3";

let library = null;
async function pkijs() {
  if (!library) {
    library = await import("/webmail/vendor/pkijs.js");
    library.setEngine("browser", new library.CryptoEngine({ name: "browser", crypto: globalThis.crypto }));
  }
  return library;
}

const storageKey = (address) => `tern-smime:${address.toLowerCase()}`;

function toBase64(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(text) {
  const s = atob(text.replace(/\s+/g, ""));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/// A string of octets (each character one octet, as entities are built
/// here) as bytes.
export function octets(text) {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
}

/// The base64 of `bytes` in 76-column CRLF lines (RFC 2045 §6.8).
function base64Lines(bytes) {
  return toBase64(bytes).replace(/.{1,76}/g, "$&\r\n");
}

/// The key and certificate a PKCS #12 file holds, opened with `passphrase`.
async function open(p12, passphrase) {
  const pki = await pkijs();
  const password = new TextEncoder().encode(passphrase).buffer;
  let pfx;
  try {
    pfx = pki.PFX.fromBER(p12.buffer.slice(p12.byteOffset, p12.byteOffset + p12.byteLength));
    await pfx.parseInternalValues({ password, checkIntegrity: true });
  } catch {
    throw new Error("wrong passphrase, or not a PKCS #12 file");
  }
  const safes = pfx.parsedValue.authenticatedSafe;
  await safes.parseInternalValues({ safeContents: safes.safeContents.map(() => ({ password })) });
  let key = null, certificate = null;
  for (const contents of safes.parsedValue.safeContents) {
    for (const bag of contents.value.safeBags) {
      if (bag.bagId === KEY_BAG) {
        await bag.bagValue.parseInternalValues({ password });
        key = bag.bagValue.parsedValue;
      } else if (bag.bagId === CERT_BAG && !certificate) {
        certificate = bag.bagValue.parsedValue;
      }
    }
  }
  if (!key || !certificate) throw new Error("the file holds no private key with its certificate");
  const pkcs8 = key.toSchema().toBER();
  const ec = certificate.subjectPublicKeyInfo.algorithm.algorithmId === "1.2.840.10045.2.1";
  const algorithm = ec ? { name: "ECDSA", namedCurve: "P-256" } : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const signing = await crypto.subtle.importKey("pkcs8", pkcs8, algorithm, false, ["sign"]);
  return { pkcs8, certificate, signing };
}

/// The addresses a certificate is for (subjectAltName rfc822Name).
async function addresses(certificate) {
  const san = (certificate.extensions || []).find((e) => e.extnID === "2.5.29.17");
  if (!san) return [];
  return san.parsedValue.altNames.filter((n) => n.type === 1).map((n) => String(n.value).toLowerCase());
}

/// Keep `p12` for `address` once `passphrase` opens it and its certificate
/// names the address.
export async function importKey(address, p12, passphrase) {
  const { certificate } = await open(p12, passphrase);
  if (!(await addresses(certificate)).includes(address.toLowerCase())) {
    throw new Error(`the certificate is not for ${address}`);
  }
  localStorage.setItem(storageKey(address), toBase64(p12));
}

export function hasKey(address) {
  return localStorage.getItem(storageKey(address)) !== null;
}

export function forgetKey(address) {
  localStorage.removeItem(storageKey(address));
}

/// The user's key, opened with `passphrase`.
export async function unlock(address, passphrase) {
  const stored = localStorage.getItem(storageKey(address));
  if (!stored) throw new Error("no S/MIME key in this browser: import one in Settings");
  return open(fromBase64(stored), passphrase);
}

/// `entity` (a MIME entity, CRLF lines) signed: a multipart/signed entity.
export async function sign(entity, unlocked) {
  const pki = await pkijs();
  const { asn1js } = pki;
  const data = octets(entity);
  const cert = unlocked.certificate;
  const digest = await crypto.subtle.digest("SHA-256", data);
  const signed = new pki.SignedData({
    version: 1,
    encapContentInfo: new pki.EncapsulatedContentInfo({ eContentType: DATA }),
    signerInfos: [new pki.SignerInfo({
      version: 1,
      sid: new pki.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
      signedAttrs: new pki.SignedAndUnsignedAttributes({
        type: 0,
        attributes: [
          new pki.Attribute({ type: "1.2.840.113549.1.9.3", values: [new asn1js.ObjectIdentifier({ value: DATA })] }),
          new pki.Attribute({ type: "1.2.840.113549.1.9.5", values: [new asn1js.UTCTime({ valueDate: new Date() })] }),
          new pki.Attribute({ type: "1.2.840.113549.1.9.4", values: [new asn1js.OctetString({ valueHex: digest })] }),
        ],
      }),
    })],
    certificates: [cert],
  });
  await signed.sign(unlocked.signing, 0, "SHA-256", data);
  const info = new pki.ContentInfo({ contentType: pki.ContentInfo.SIGNED_DATA, content: signed.toSchema(true) });
  const der = info.toSchema().toBER();
  const boundary = `tern-signed-${crypto.randomUUID()}`;
  return `Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256;\r\n boundary="${boundary}"\r\n\r\n` +
    `This is a signed message.\r\n--${boundary}\r\n${entity}\r\n--${boundary}\r\n` +
    `Content-Type: application/pkcs7-signature; name="smime.p7s"\r\nContent-Transfer-Encoding: base64\r\n` +
    `Content-Disposition: attachment; filename="smime.p7s"\r\n\r\n${base64Lines(der)}--${boundary}--\r\n`;
}

/// `entity` encrypted to each certificate (base64 DER): an
/// application/pkcs7-mime enveloped-data entity.
export async function encrypt(entity, certificates) {
  const pki = await pkijs();
  const enveloped = new pki.EnvelopedData();
  for (const c of certificates) {
    const cert = pki.Certificate.fromBER(fromBase64(c));
    const ec = cert.subjectPublicKeyInfo.algorithm.algorithmId === "1.2.840.10045.2.1";
    enveloped.addRecipientByCertificate(cert, ec ? {} : { oaepHashAlgorithm: "SHA-256" }, ec ? 2 : 1);
  }
  await enveloped.encrypt({ name: "AES-CBC", length: 256 }, octets(entity));
  const info = new pki.ContentInfo({ contentType: pki.ContentInfo.ENVELOPED_DATA, content: enveloped.toSchema() });
  return `Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n` +
    `Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n\r\n` +
    base64Lines(info.toSchema().toBER());
}

/// The entity inside an enveloped-data body (`der`: the CMS object, its
/// transfer encoding undone), decrypted with the user's key.
export async function decrypt(der, unlocked) {
  const pki = await pkijs();
  let info;
  try {
    info = pki.ContentInfo.fromBER(der.buffer.slice(der.byteOffset, der.byteOffset + der.byteLength));
  } catch {
    throw new Error("this is not an S/MIME encrypted message");
  }
  const enveloped = new pki.EnvelopedData({ schema: info.content });
  const serial = unlocked.certificate.serialNumber.valueBlock.toString();
  let index = enveloped.recipientInfos.findIndex((r) => {
    const id = r.value.rid || (r.value.recipientEncryptedKeys && r.value.recipientEncryptedKeys.encryptedKeys[0].rid);
    const sn = id && (id.serialNumber || (id.value && id.value.serialNumber));
    return sn && sn.valueBlock.toString() === serial;
  });
  if (index < 0) index = 0;
  try {
    const plain = await enveloped.decrypt(index, { recipientCertificate: unlocked.certificate, recipientPrivateKey: unlocked.pkcs8 });
    return new Uint8Array(plain);
  } catch {
    throw new Error("this message was not encrypted to your key");
  }
}

/// The readable text of a MIME entity (the first text/plain part, its
/// transfer encoding undone), for showing a decrypted message.
export function readableText(bytes) {
  return textOf(new TextDecoder("latin1").decode(bytes), 0).replace(/\r\n/g, "\n");
}

function textOf(entity, depth) {
  const split = entity.search(/\r?\n\r?\n/);
  const head = split < 0 ? entity : entity.slice(0, split);
  const body = split < 0 ? "" : entity.slice(split).replace(/^\r?\n\r?\n/, "");
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ");
  const field = (name) => {
    const m = new RegExp(`^${name}:\\s*(.*)$`, "im").exec(unfolded);
    return m ? m[1].trim() : "";
  };
  const type = field("Content-Type").toLowerCase() || "text/plain";
  if (type.startsWith("multipart/") && depth < 8) {
    const b = /boundary="?([^";]+)"?/i.exec(field("Content-Type"));
    if (!b) return "";
    const parts = body.split(`--${b[1]}`).slice(1, -1).map((p) => p.replace(/^\r?\n/, "").replace(/\r?\n$/, ""));
    for (const p of parts) {
      const t = textOf(p, depth + 1);
      if (t) return t;
    }
    return "";
  }
  if (!type.startsWith("text/plain")) return "";
  const encoding = field("Content-Transfer-Encoding").toLowerCase();
  let octets;
  if (encoding === "base64") {
    octets = fromBase64(body);
  } else if (encoding === "quoted-printable") {
    const s = body.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
    octets = Uint8Array.from(s, (c) => c.charCodeAt(0));
  } else {
    octets = Uint8Array.from(body, (c) => c.charCodeAt(0));
  }
  const charset = (/charset="?([^";]+)"?/i.exec(field("Content-Type")) || [, "utf-8"])[1];
  try {
    return new TextDecoder(charset).decode(octets);
  } catch {
    return new TextDecoder("utf-8").decode(octets);
  }
}

/// `text` (an entity) and the attachments ({type, name, bytes}) as one
/// multipart/mixed entity (RFC 2046 §5.1.3); `text` alone without any.
/// Attachments are base64 but a message/rfc822 one, which stays as it is
/// (§5.2.1 forbids encoding it).
export function mixedEntity(text, attachments) {
  if (!attachments.length) return text;
  const boundary = `tern-mixed-${crypto.randomUUID()}`;
  let out = `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n`;
  out += `--${boundary}\r\n${text}\r\n`;
  for (const a of attachments) {
    const name = a.name || "attachment";
    const ascii = /^[\x20-\x7e]*$/.test(name) && !/["\\]/.test(name);
    const param = ascii ? `filename="${name}"` : `filename*=UTF-8''${encodeURIComponent(name)}`;
    out += `--${boundary}\r\nContent-Type: ${a.type || "application/octet-stream"}\r\nContent-Disposition: attachment; ${param}\r\n`;
    if ((a.type || "").toLowerCase() === "message/rfc822") {
      let s = "";
      for (const b of a.bytes) s += String.fromCharCode(b);
      out += `Content-Transfer-Encoding: 8bit\r\n\r\n${s.replace(/\r?\n$/, "")}\r\n`;
    } else {
      out += `Content-Transfer-Encoding: base64\r\n\r\n${base64Lines(a.bytes)}`;
    }
  }
  return `${out}--${boundary}--\r\n`;
}

/// A text/plain entity (quoted-printable, UTF-8) for `text`: what is
/// signed or encrypted.
export function textEntity(text) {
  const bytes = new TextEncoder().encode(text.replace(/\r?\n/g, "\r\n"));
  let line = "", out = "";
  const push = (piece) => {
    if (line.length + piece.length > 75) { out += `${line}=\r\n`; line = ""; }
    line += piece;
  };
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 13 && bytes[i + 1] === 10) {
      // Trailing white space is encoded (RFC 2045 §6.7 rule 3).
      line = line.replace(/[ \t]$/, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
      out += `${line}\r\n`; line = ""; i++;
    } else if ((b >= 33 && b <= 126 && b !== 61) || b === 32 || b === 9) {
      push(String.fromCharCode(b));
    } else {
      push(`=${b.toString(16).toUpperCase().padStart(2, "0")}`);
    }
  }
  out += line;
  return `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${out}`;
}
