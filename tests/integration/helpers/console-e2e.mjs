// SPDX-License-Identifier: GPL-2.0-or-later
//
// Drives the helpdesk console in Debian's headless Chromium (playwright-core, pinned in
// ui/web/package-lock.json; it never downloads a browser): connect with the approver's
// NATS credentials, make a key in the browser and check that it is kept and cannot be read
// out, import the approver key file, find the pending request with its context, filter,
// take the screenshot, approve with a TTL and a comment, and wait until the host's answer
// shows the request approved. Arguments come as one JSON object in argv[2]:
//   {playwright, url, ws, creds, key, keyId, host, ticket, user, program, args, screenshot}
// Exit status 0 when every step held; otherwise the failing step is printed.

const cfg = JSON.parse(process.argv[2]);
const { chromium } = await import(cfg.playwright);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
let step = "start";
const fail = (what) => { throw new Error(`${step}: ${what}`); };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // the page must fetch nothing but its own files and the broker
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.host !== new URL(cfg.url).host && !r.url().startsWith(cfg.ws)) errors.push(`fetched ${r.url()}`);
  });
  step = "open";
  await page.goto(`${cfg.url}/index.html?nats=${encodeURIComponent(cfg.ws)}`);

  step = "connect";
  await page.setInputFiles("#nats-creds", cfg.creds);
  await page.click("#connect");
  await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("connected"), null,
                             { timeout: 30000 });

  step = "a key made in the browser";
  await page.click("#key-generate");
  await page.waitForFunction(() => document.querySelector("#key-id").textContent !== "none");
  const made = await page.textContent("#key-id");
  const line = await page.textContent("#key-pub");
  if (!new RegExp(`^elevate-approver ${made} [A-Za-z0-9+/]{43}=$`).test(line)) fail(`public line ${line}`);
  const extractable = await page.evaluate(() => new Promise((resolve) => {
    const r = indexedDB.open("elevate-helpdesk", 1);
    r.onsuccess = () => {
      const g = r.result.transaction("keys").objectStore("keys").get("approver");
      g.onsuccess = async () => {
        const k = g.result.key;
        try {
          await crypto.subtle.exportKey("pkcs8", k);
          resolve(`exported (extractable=${k.extractable})`);
        } catch (e) {
          resolve(k.extractable ? "extractable, yet not exported" : "no");
        }
      };
    };
  }));
  if (extractable !== "no") fail(`the private key can be read out: ${extractable}`);
  await page.reload();
  await page.waitForFunction((id) => document.querySelector("#key-id").textContent === id, made);

  step = "import the approver key file";
  await page.setInputFiles("#key-file", cfg.key);
  await page.waitForFunction((id) => document.querySelector("#key-id").textContent === id, cfg.keyId);
  await page.setInputFiles("#nats-creds", cfg.creds);
  await page.click("#connect");
  await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("connected"), null,
                             { timeout: 30000 });

  step = "the pending request, with its context";
  const card = page.locator(`.request[data-ticket="${cfg.ticket}"]`);
  await card.waitFor({ timeout: 60000 });
  const text = await card.textContent();
  for (const want of [`${cfg.host}/${cfg.ticket}`, cfg.user, cfg.program, ...cfg.args, cfg.ancestry ?? "bash[812] <- sshd[700]"])
    if (!text.includes(want)) fail(`"${want}" not shown in: ${text}`);

  step = "filters";
  await page.fill("#f-host", "no-such-host");
  if (await card.count() !== 0) fail("a filter on another host still shows the request");
  await page.fill("#f-host", cfg.host);
  await page.fill("#f-program", cfg.programFilter ?? "dpkg");
  await card.waitFor();
  await page.fill("#f-program", "");

  step = "screenshot";
  await card.locator("input.comment").fill("ticket 4711: printer driver");
  await page.screenshot({ path: cfg.screenshot, fullPage: true });

  step = "approve";
  await card.locator("input.ttl").fill("45m");
  await card.locator("button.approve").click();
  await page.waitForFunction((t) => {
    const row = document.querySelector(`#decisions tr[data-ticket="${t}"]`);
    return row && row.textContent.includes("approved");
  }, cfg.ticket, { timeout: 60000 });
  if (await card.count() !== 0) fail("the approved request is still listed as pending");
  if (errors.length) fail(errors.join("; "));
  console.log(`ok: approved ${cfg.host}/${cfg.ticket} with key ${cfg.keyId} in the browser`);
} catch (e) {
  console.error(String(e.stack || e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
