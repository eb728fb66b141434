// The web UI's main path in Debian's headless Firefox ESR, driven by puppeteer-core
// over WebDriver BiDi (no browser download). Started by tests/tests/web_ui.rs with two
// daemons running, like e2e.mjs (the fuller Chromium test): set the password, log in,
// upload a file and see its CID, fetch a CID the second daemon shares and watch the bar
// reach 100%, see that daemon among the peers, check the phone layout, log out and be
// refused. Prints one JSON line of results; failures exit non-zero with the reason.
//
// Every request Firefox would make to anywhere but 127.0.0.1 goes to a dead local proxy,
// so the test cannot reach outside the machine.
import { mkdirSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { env, FIREFOX_OFFLINE_PREFS, painted, STEP, testRun } from "./harness.mjs";
import puppeteer from "puppeteer-core";

const setupLink = env("P2PD_SETUP_LINK");
const password = env("P2PD_PASSWORD");
const uploadFile = env("P2PD_UPLOAD_FILE");
const remoteCid = env("P2PD_REMOTE_CID");
const remotePeer = env("P2PD_REMOTE_PEER");
const shots = env("P2PD_SCREENSHOTS");
const executablePath = process.env.FIREFOX || "/usr/bin/firefox-esr";

mkdirSync(shots, { recursive: true });
const { log, results, step, run, setBrowser } = testRun("e2e-firefox");
const profile = mkdtempSync(join(tmpdir(), "p2pd-firefox-"));

async function main() {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath,
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: FIREFOX_OFFLINE_PREFS,
  });
  setBrowser(browser);
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const visible = (sel) => page.waitForSelector(sel, { visible: true });
  const fill = async (sel, text) => {
    await page.$eval(sel, (el) => { el.value = ""; });
    await page.type(sel, text);
  };
  const nav = async (name) => {
    await page.click(`#nav a[data-page="${name}"]`);
    await visible(`#page-${name}`);
  };

  step("set the password through the one-time setup link");
  await page.goto(setupLink);
  await visible("#setup-view");
  await fill("#setup-password", password);
  await fill("#setup-repeat", password);
  await page.click("#setup-submit");
  await visible("#page-dashboard");

  step("log out and log in again");
  await page.click("#logout");
  await visible("#login-view");
  await fill("#login-password", password);
  await page.click("#login-submit");
  await visible("#page-dashboard");
  await page.waitForFunction(() => /^12D3Koo/.test(document.getElementById("node-id")?.textContent || ""));
  results.node_id = await page.$eval("#node-id", (el) => el.textContent);
  await shot("dashboard");

  step("upload a file and see it listed with its CID");
  await nav("files");
  const input = await page.$("#upload-input");
  await input.uploadFile(uploadFile);
  await page.click("#upload-submit");
  const name = basename(uploadFile);
  await page.waitForFunction((n) => [...document.querySelectorAll("#files-body td.file-name")]
    .some((td) => td.textContent.includes(n)), {}, name);
  results.uploaded_cid = await page.evaluate((n) => {
    const row = [...document.querySelectorAll("#files-body tr")]
      .find((tr) => tr.querySelector("td.file-name")?.textContent.includes(n));
    return row?.querySelector("code.cid")?.textContent;
  }, name);
  await shot("files");

  step("download the CID the second daemon shares and watch the bar reach 100%");
  await nav("downloads");
  await fill("#fetch-cid", remoteCid);
  await page.click("#fetch-submit");
  const bar = `#downloads-list .download[data-cid="${remoteCid}"] [role=progressbar]`;
  await page.waitForSelector(bar);
  const seen = [];
  const deadline = Date.now() + 90_000;
  for (;;) {
    const v = await page.$eval(bar, (el) => Number(el.getAttribute("aria-valuenow")));
    if (seen[seen.length - 1] !== v) seen.push(v);
    if (v >= 100) break;
    if (Date.now() > deadline) throw new Error(`download stuck at ${v}%`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.waitForSelector(`#downloads-list .download[data-cid="${remoteCid}"][data-state="done"]`);
  results.progress_seen = seen;
  await shot("downloads");

  step("see the second daemon in the peers list");
  await nav("peers");
  await page.waitForSelector(`#peers-body tr[data-peer="${remotePeer}"]`);
  results.peer_row = (await page.$eval(`#peers-body tr[data-peer="${remotePeer}"]`, (el) => el.textContent))
    .replace(/\s+/g, " ").trim();
  await shot("peers");

  step("phone-sized screen");
  await page.setViewport({ width: 390, height: 844 });
  for (const p of ["dashboard", "files", "downloads", "peers"]) {
    await nav(p);
    await painted(page);
  }
  await shot("phone-peers");
  results.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewport({ width: 1280, height: 860 });

  step("log out and be refused");
  await page.click("#logout");
  await visible("#login-view");
  results.after_logout_status = await page.evaluate(() => fetch("/api/status").then((r) => r.status));
  results.problems = problems;
}

await run(main, () => rmSync(profile, { recursive: true, force: true }));
