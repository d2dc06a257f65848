// SPDX-License-Identifier: GPL-2.0-or-later
//
// The elevate helpdesk console (docs/helpdesk.md). A static page: it talks only to the
// broker's WebSocket listener, with the approver's NATS credentials, and signs decisions
// here, with an Ed25519 key that WebCrypto keeps non-extractable in IndexedDB.
//
// Invariants:
//  - A decision signs the SHA-256 of exactly the filing bytes this page decoded and showed;
//    the digest the request carries is compared, never trusted. So what was shown is what
//    the agent checks, whatever a broker or a web server in between did.
//  - Everything shown from a request is text (textContent, never HTML), and control and
//    bidi characters are shown as \u{…}: a user cannot dress up an argument.
//  - The private key never leaves WebCrypto: imported or made non-extractable; a key file
//    is read once, checked (kind, id) and forgotten.
//  - Nothing is fetched at run time but this page's own files: the NATS client is bundled.

import { credsAuthenticator, nkeyAuthenticator, wsconnect } from "@nats-io/nats-core";
import { Kvm } from "@nats-io/kv";

const DECISION_DOMAIN = "elevate helpdesk decision 1";
const REQUESTS = "ELEVATE_REQUESTS";
const DECISIONS = "ELEVATE_DECISIONS";
const ARG_SHOWN = 512;
const TTL_MAX = 30 * 86400;
const DECISION_LIFE = 3600;
const PKCS8_ED25519 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });
const $ = (id) => document.getElementById(id);

const state = { nc: null, requestsKv: null, decisionsKv: null, requests: new Map(), key: null };

// ---- bytes

function b64decode(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function b64encode(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256hex(bytes) {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// Control characters, bidi overrides and the like, made visible.
function visible(s) {
  return String(s ?? "").replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g,
    (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(visible(c)));
  return e;
}

function status(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = `status ${cls}`;
}

// ---- the approver key (IndexedDB holds the CryptoKey itself: structured clone keeps it
// non-extractable)

function db() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open("elevate-helpdesk", 1);
    r.onupgradeneeded = () => r.result.createObjectStore("keys", { keyPath: "slot" });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function dbDo(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction("keys", mode);
    const req = fn(t.objectStore("keys"));
    t.oncomplete = () => resolve(req?.result);
    t.onerror = () => reject(t.error);
  });
}

async function keyId(pub) {
  return (await sha256hex(pub)).slice(0, 16);
}

function pubLine(k) {
  return `elevate-approver ${k.id} ${b64encode(k.pub)}`;
}

async function storeKey(privateKey, pub) {
  const k = { slot: "approver", id: await keyId(pub), pub, key: privateKey };
  await dbDo("readwrite", (s) => s.put(k));
  state.key = k;
  showKey();
}

function showKey() {
  $("key-id").textContent = state.key ? state.key.id : "none";
  const p = $("key-pub");
  p.hidden = !state.key;
  p.textContent = state.key ? pubLine(state.key) : "";
}

// "elevate-key 1\nkind approver\nid ID\nsecret BASE64\n", as elevatectl keys new writes it.
function parseKeyFile(text) {
  const m = /^elevate-key 1\nkind (\w+)\nid ([0-9a-f]{16})\nsecret ([A-Za-z0-9+/=]+)\n$/.exec(text);
  if (!m) throw new Error("not a private key file of elevatectl keys new");
  if (m[1] !== "approver") throw new Error(`a ${m[1]} key; decisions are signed with an approver key`);
  const seed = b64decode(m[3]);
  if (seed.length !== 32) throw new Error("the key is not 32 bytes");
  return { id: m[2], seed };
}

async function importKeyFile(file) {
  const { id, seed } = parseKeyFile(await file.text());
  const der = concat(new Uint8Array(PKCS8_ED25519), seed);
  // the public half, from a throw-away extractable import of the seed we already hold
  const tmp = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", tmp);
  const pub = b64decode(jwk.x.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (jwk.x.length % 4)) % 4));
  if ((await keyId(pub)) !== id) throw new Error("the key file's id is not the id of its key");
  const key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  seed.fill(0);
  der.fill(0);
  await storeKey(key, pub);
}

async function generateKey() {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  await storeKey(pair.privateKey, pub);
}

// ---- the broker

function authenticator(text) {
  if (text.includes("BEGIN NATS USER JWT")) return credsAuthenticator(enc.encode(text));
  const seed = text.split(/\s+/).find((l) => /^SU[A-Z2-7]{56}$/.test(l));
  if (!seed) throw new Error("the credentials hold neither a user nkey seed nor a .creds JWT");
  return nkeyAuthenticator(enc.encode(seed));
}

async function connect() {
  const url = $("nats-url").value.trim();
  const file = $("nats-creds").files[0];
  const opts = { servers: url, name: "elevate-helpdesk-console", maxReconnectAttempts: -1, reconnectTimeWait: 1000 };
  if (file) opts.authenticator = authenticator(await file.text());
  status("connecting", "wait");
  if (state.nc) await state.nc.close();
  state.requests.clear();
  render();
  state.nc = await wsconnect(opts);
  status(`connected to ${url}`, "on");
  (async () => {
    for await (const s of state.nc.status()) {
      if (s.type === "disconnect") status("disconnected: reconnecting", "wait");
      if (s.type === "reconnect") status(`connected to ${url}`, "on");
    }
  })();
  state.nc.closed().then(() => status("not connected", "off"));
  const kvm = new Kvm(state.nc);
  state.requestsKv = await kvm.open(REQUESTS);
  state.decisionsKv = await kvm.open(DECISIONS);
  watchRequests();
}

async function watchRequests() {
  const w = await state.requestsKv.watch();
  for await (const e of w) {
    try {
      await takeRequest(e);
    } catch (err) {
      console.warn(`request ${e.key}: ${err.message}`);
    }
    render();
  }
}

// A broker value: the filing and state the agent signed. The digest is computed here.
async function takeRequest(e) {
  if (e.operation !== "PUT") {
    state.requests.delete(e.key);
    return;
  }
  const v = JSON.parse(dec.decode(e.value));
  if (v.elevate_request !== 1) throw new Error("not a request");
  const filingBytes = b64decode(v.filing);
  const filing = JSON.parse(dec.decode(filingBytes));
  const st = JSON.parse(dec.decode(b64decode(v.state)));
  const digest = await sha256hex(filingBytes);
  if (filing.format !== "elevate-request" || st.format !== "elevate-request-state") throw new Error("not a request");
  if (e.key !== `${filing.host}.${filing.id}`) throw new Error("stored under another host's key");
  if (st.digest !== digest || st.id !== filing.id || st.host !== filing.host)
    throw new Error("its state is about another filing");
  state.requests.set(e.key, { key: e.key, filing, st, digest, revision: e.revision });
}

// ---- decisions

function parseDuration(s) {
  const t = s.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const re = /(\d+)\s*(d|h|m|s)/g;
  let total = 0, used = "", m;
  while ((m = re.exec(t))) {
    total += Number(m[1]) * { d: 86400, h: 3600, m: 60, s: 1 }[m[2]];
    used += m[0];
  }
  if (!used || used.replace(/\s/g, "") !== t.replace(/\s/g, "")) throw new Error(`"${t}" is not a duration (30m, 1h)`);
  return total;
}

function approverHost() {
  const h = `console.${location.hostname}`.replace(/[^A-Za-z0-9_.-]/g, "-");
  return h.slice(0, 64);
}

async function decide(req, verdict, ttlText, comment, out) {
  if (!state.key) throw new Error("no approver key: import one or make one first");
  const now = Math.floor(Date.now() / 1000);
  const body = {
    format: "elevate-decision", version: 1, host: req.filing.host, request: req.filing.id, digest: req.digest,
    decision: verdict, approver: state.key.id, approver_host: approverHost(), issued: now, expires: now + DECISION_LIFE,
  };
  if (verdict === "approve") {
    const ttl = parseDuration(ttlText);
    if (ttl < 1 || ttl > TTL_MAX) throw new Error("the grant's time must be 1 s .. 30 days");
    body.ttl = ttl;
  }
  if (comment) body.comment = comment;
  const bytes = enc.encode(JSON.stringify(body));
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, state.key.key,
    concat(enc.encode(DECISION_DOMAIN), new Uint8Array([0]), bytes)));
  const value = JSON.stringify({ elevate_decision: 1, body: b64encode(bytes), signature: b64encode(sig) });
  try {
    await state.decisionsKv.create(req.key, enc.encode(value));
  } catch (err) {
    const first = await state.decisionsKv.get(req.key).catch(() => null);
    if (first && first.operation === "PUT") {
      let who = "another approver";
      try {
        const d = JSON.parse(dec.decode(b64decode(JSON.parse(dec.decode(first.value)).body)));
        who = `${d.decision} by key ${d.approver}${d.approver_host ? " on " + d.approver_host : ""}`;
      } catch (_) { /* shown as it is */ }
      throw new Error(`already decided: ${who}; yours was not stored`);
    }
    throw err;
  }
  out.textContent = `${verdict === "approve" ? "approved" : "denied"} with key ${state.key.id}; waiting for the host`;
}

// ---- showing requests

function age(sec) {
  const s = Math.max(0, Math.floor(sec));
  return s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m` : `${s}s`;
}

function argSpan(a) {
  const s = String(a);
  return s.length > ARG_SHOWN ? el("span", { class: "arg" }, `${s.slice(0, ARG_SHOWN)}…(${s.length - ARG_SHOWN} more)`)
                              : el("span", { class: "arg" }, s);
}

function card(req) {
  const f = req.filing, now = Date.now() / 1000;
  const dl = el("dl");
  const row = (k, v) => dl.append(el("dt", {}, k), v instanceof Node ? el("dd", {}, v) : el("dd", {}, v ?? ""));
  row("program", f.program ? f.program : el("span", { class: "warn" },
    `NOT VERIFIED: "${visible(f.program_name)}" is the name the user gave; only the sha256 says what runs`));
  row("sha256", f.sha256);
  const argv = el("span");
  for (const a of f.args || []) argv.append(argSpan(a));
  if (!(f.args || []).length) argv.append("(none)");
  row("argv", argv);
  for (const fa of f.file_args || []) row(`file #${fa.position}`, `${fa.path || "(no trustworthy path)"}  sha256 ${fa.sha256}`);
  if (f.reason) row("reason", f.reason);
  row("rule", `${f.rule}, as ${f.run_as}, grants ${f.scope === "binary" ? "any arguments" : "exactly these arguments"}`);
  row("from", `tty ${f.tty || "none"}, session ${f.session || "none"}`);
  if ((f.ancestry || []).length) row("process", f.ancestry.join(" <- "));
  for (const n of f.notes || []) row("note", el("span", { class: "warn" }, n));
  if (req.st.note) row("host says", el("span", { class: "warn" }, req.st.note));
  row("digest", req.digest);

  const ttl = el("input", { type: "text", value: "30m", size: 6, className: "ttl", title: "how long the grant lasts" });
  const comment = el("input", { type: "text", placeholder: "comment (shown to the user)", className: "comment" });
  const out = el("span", { class: "result" });
  const act = (verdict) => async () => {
    out.textContent = "signing…";
    try {
      await decide(req, verdict, ttl.value, comment.value.trim(), out);
    } catch (err) {
      out.textContent = err.message;
    }
  };
  const approve = el("button", { class: "approve", onclick: act("approve") }, "Approve");
  const deny = el("button", { class: "deny", onclick: act("deny") }, "Deny");
  return el("div", { class: "request", "data-ticket": f.ticket, "data-host": f.host },
    el("h3", {}, `${f.host}/${f.ticket}  ${f.user || "?"} (uid ${f.uid}), waiting ${age(now - f.created)}, expires in ${age(f.expires - now)}`),
    dl, el("div", { class: "actions" }, el("label", {}, "grant for ", ttl), comment, approve, deny, out));
}

function matches(req) {
  const f = req.filing;
  const h = $("f-host").value.trim(), u = $("f-user").value.trim(), p = $("f-program").value.trim();
  return (!h || f.host.includes(h)) && (!u || (f.user || "").includes(u)) &&
         (!p || (f.program || f.program_name || "").includes(p));
}

let rendered = new Map();

function render() {
  const box = $("pending"), tbody = $("decisions").querySelector("tbody");
  const all = [...state.requests.values()];
  const pending = all.filter((r) => r.st.state === "pending" && matches(r)).sort((a, b) => a.filing.created - b.filing.created);
  // keep the cards that did not change, so what an approver is typing survives an update
  const next = new Map();
  for (const r of pending) {
    const old = rendered.get(r.key);
    next.set(r.key, old && old.revision === r.revision ? old : { revision: r.revision, node: card(r) });
  }
  box.replaceChildren(...[...next.values()].map((c) => c.node));
  rendered = next;
  $("count").textContent = String(pending.length);
  $("pending-empty").hidden = pending.length > 0;
  const done = all.filter((r) => r.st.state !== "pending").sort((a, b) => b.st.updated - a.st.updated).slice(0, 50);
  tbody.replaceChildren(...done.map((r) => el("tr", { "data-ticket": r.filing.ticket },
    el("td", {}, new Date(r.st.updated * 1000).toLocaleString()), el("td", {}, `${r.filing.host}/${r.filing.ticket}`),
    el("td", {}, r.st.state), el("td", {}, [r.st.by, r.st.by_host].filter(Boolean).join(" on ")),
    el("td", {}, r.st.comment || ""), el("td", {}, r.st.note || ""))));
}

// ---- wiring

async function guard(fn) {
  try {
    await fn();
  } catch (err) {
    status(err.message, "off");
  }
}

$("connect").onclick = () => guard(connect);
$("key-file").onchange = (ev) => guard(() => importKeyFile(ev.target.files[0]));
$("key-generate").onclick = () => guard(generateKey);
$("key-forget").onclick = () => guard(async () => {
  await dbDo("readwrite", (s) => s.delete("approver"));
  state.key = null;
  showKey();
});
for (const id of ["f-host", "f-user", "f-program"]) $(id).oninput = render;
const q = new URLSearchParams(location.search);
$("nats-url").value = q.get("nats") || `ws://${location.hostname || "127.0.0.1"}:8443`;
dbDo("readonly", (s) => s.get("approver")).then((k) => {
  state.key = k || null;
  showKey();
});
setInterval(render, 30000);
