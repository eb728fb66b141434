// Browser test of sharing in the p2pd web UI (issue 13), in Debian's headless Chromium
// driven by playwright-core. Started by tests/tests/web_ui.rs, which runs daemon A (whose
// UI is used) holding a file, and daemon C, which shared a file with a password. In the
// browser: make a ticket for A's file, see it with its QR code; unpublish the file and
// publish it again; fetch C's file by its ticket and password. Prints one JSON line of
// results (the ticket and the QR code's SVG, for the Rust test to check and fetch with).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromiumPage, env, setPasswordAndLogIn, testRun } from "./harness.mjs";
import { chromium } from "playwright-core";

const setupLink = env("P2PD_SETUP_LINK");
const password = env("P2PD_PASSWORD");
const localCid = env("P2PD_LOCAL_CID");
const remoteTicket = env("P2PD_REMOTE_TICKET");
const remotePassword = env("P2PD_REMOTE_PASSWORD");
const remoteCid = env("P2PD_REMOTE_CID");
const shots = env("P2PD_SCREENSHOTS");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

mkdirSync(shots, { recursive: true });
const { results, step, run, setBrowser } = testRun("e2e-share");

async function main() {
  const { context, page, problems } = await chromiumPage(chromium, executablePath, setBrowser, { width: 1280, height: 900 });
  // The browser logs a refused request: expected only while a wrong password is tried.
  let expectedRefusal = null;
  page.on("console", (m) => {
    if (m.type() !== "error" || (expectedRefusal && expectedRefusal.test(m.text()))) return;
    problems.push(`console: ${m.text()}`);
  });
  page.on("dialog", (d) => d.accept());
  const shot = async (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  await setPasswordAndLogIn(page, step, setupLink, password);

  step("open the Ticket link of the file on the files page");
  await page.click('#nav a[data-page="files"]');
  const row = page.locator(`#files-body tr[data-cid="${localCid}"]`);
  await row.waitFor();
  await row.locator('[data-action="share"]').click();
  await page.locator("#page-shares").waitFor({ state: "visible" });
  await page.waitForFunction((cid) => document.getElementById("share-cid").value === cid, localCid);

  step("make a ticket that ends in a day, and see it with its QR code");
  await page.selectOption("#share-expires", "86400");
  await page.click("#share-submit");
  const card = page.locator(`#shares-list .share[data-cid="${localCid}"]`);
  await card.waitFor();
  results.ticket = (await card.locator("code.ticket").textContent()).trim();
  results.ends = (await card.locator(".share-ends").textContent()).trim();
  await page.waitForFunction(() => {
    const img = document.querySelector("#shares-list .share img.qr");
    return img && img.complete && img.naturalWidth > 0;
  });
  const src = await card.locator("img.qr").getAttribute("src");
  results.qr_svg = await page.evaluate(async (url) => (await fetch(url)).text(), src);
  await shot("10-shares");

  step("the copy button puts the ticket on the clipboard");
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await card.locator('[data-action="copy-ticket"]').click();
  results.copied = await page.evaluate(() => navigator.clipboard.readText());

  step("stop announcing the file, then publish it again");
  await page.click('#nav a[data-page="files"]');
  await row.locator('[data-action="unpublish"]').click();
  await row.locator('[data-action="publish"]').waitFor();
  await row.locator('[data-action="publish"]').click();
  await row.locator('[data-action="unpublish"]').waitFor();

  step("a wrong password for the other node's ticket is refused");
  await page.click('#nav a[data-page="shares"]');
  await page.fill("#ticket-input", remoteTicket);
  await page.fill("#ticket-password", "not it");
  expectedRefusal = /status of 403/;
  await page.click("#ticket-submit");
  await page.locator("#ticket-error", { hasText: "wrong password" }).waitFor();
  expectedRefusal = null;
  results.wrong_password_error = (await page.locator("#ticket-error").textContent()).trim();

  step("fetch by ticket with the right password, and see the download finish");
  await page.fill("#ticket-password", remotePassword);
  await page.click("#ticket-submit");
  await page.locator("#page-downloads").waitFor({ state: "visible" });
  await page.locator(`#downloads-list .download[data-cid="${remoteCid}"][data-state="done"]`).waitFor({ timeout: 60_000 });
  await shot("11-fetched-by-ticket");

  results.problems = problems;
}

await run(main);
