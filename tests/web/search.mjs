// Search and browsing in the p2pd web UI, in Debian's headless Chromium (over CDP) or
// Firefox ESR (over WebDriver BiDi), both driven by puppeteer-core: P2PD_BROWSER picks
// which. Started by tests/tests/search.rs with daemons running: two publishers of the
// wanted file, a third publisher that answers too late (so the search runs to its
// timeout while results already show), and the node whose UI is driven.
//
// Steps: set the password; search in mixed letter case and see the result appear while
// the search still runs, with its two sources; download it with one click and watch the
// row's progress bar; find it in My files; open a publisher's page from a source link
// and see exactly its listed files; unlist the downloaded file from My files and turn
// browsing off; check the phone layout. Prints one JSON line of results; any failure
// exits non-zero with the reason on stderr.
//
// Every request the browser would make to anywhere but 127.0.0.1 goes to a dead local
// proxy, so the test cannot reach outside the machine.
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { env, FIREFOX_OFFLINE_PREFS, painted, STEP, testRun } from "./harness.mjs";
import puppeteer from "puppeteer-core";

const which = env("P2PD_BROWSER"); // "chromium" or "firefox"
const executablePath = env("P2PD_BROWSER_BIN");
const setupLink = env("P2PD_SETUP_LINK");
const password = env("P2PD_PASSWORD");
const query = env("P2PD_QUERY");
const wantedCid = env("P2PD_WANTED_CID");
const wantedName = env("P2PD_WANTED_NAME");
const slowName = env("P2PD_SLOW_NAME");
const publisher = env("P2PD_PUBLISHER");
const publisherFiles = JSON.parse(env("P2PD_PUBLISHER_FILES"));
const shots = env("P2PD_SCREENSHOTS");

mkdirSync(shots, { recursive: true });
const { results, step, run, setBrowser } = testRun(`search-${which}`);

function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), `p2pd-${which}-`));
  if (which === "firefox") {
    return puppeteer.launch({ browser: "firefox", executablePath, headless: true, userDataDir, extraPrefsFirefox: FIREFOX_OFFLINE_PREFS });
  }
  return puppeteer.launch({
    browser: "chrome", executablePath, headless: true, userDataDir,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost",
    ],
  });
}

async function main() {
  const browser = await launch();
  setBrowser(browser);
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const shot = (name) => page.screenshot({ path: join(shots, `${which}-${name}.png`), fullPage: true });
  const visible = (sel) => page.waitForSelector(sel, { visible: true });
  const fill = async (sel, text) => {
    await page.$eval(sel, (el) => { el.value = ""; });
    await page.type(sel, text);
  };
  const nav = async (name) => {
    await page.click(`#nav a[data-page="${name}"]`);
    await visible(`#page-${name}`);
  };
  // Tables are redrawn as live data arrives: find and click an element in one go.
  const clickNow = async (sel) => {
    await page.waitForSelector(sel);
    await page.$eval(sel, (el) => el.click());
  };
  const row = `#search-body tr[data-cid="${wantedCid}"]`;

  step("set the password through the one-time setup link");
  await page.goto(setupLink);
  await visible("#setup-view");
  await fill("#setup-password", password);
  await fill("#setup-repeat", password);
  await page.click("#setup-submit");
  await visible("#page-dashboard");

  step("search: the result appears while the search still runs");
  await nav("search");
  await fill("#search-input", query);
  const started = Date.now();
  await page.click("#search-submit");
  // The slow publisher keeps the search running to its timeout; the result must show
  // before that, with the search still marked as running.
  await page.waitForFunction((sel) => {
    const r = document.querySelector(sel);
    return r && document.getElementById("search-submit").disabled
      && document.getElementById("search-status").textContent.startsWith("Searching");
  }, {}, row);
  results.first_row_ms = Date.now() - started;
  results.status_while_running = await page.$eval("#search-status", (el) => el.textContent);
  results.row_name = await page.$eval(`${row} td.file-name`, (el) => el.textContent);
  await shot("01-search-running");

  step("the result has two sources, each linking to its peer's page");
  await page.waitForFunction((sel) => document.querySelector(`${sel} .sources summary`)?.textContent === "2 sources", {}, row);
  await clickNow(`${row} .sources summary`);
  results.source_links = await page.$$eval(`${row} .source-list a`, (links) => links.map((a) => a.getAttribute("href")));

  step("download it with one click and watch its progress in the row");
  await page.evaluate((sel) => {
    window.__progress = [];
    const body = document.getElementById("search-body");
    new MutationObserver(() => {
      const bar = document.querySelector(`${sel} [role=progressbar]`);
      if (!bar) return;
      const v = Number(bar.getAttribute("aria-valuenow"));
      if (window.__progress[window.__progress.length - 1] !== v) window.__progress.push(v);
    }).observe(body, { childList: true, subtree: true, attributes: true });
  }, row);
  await clickNow(`${row} [data-action="download"]`);
  await page.waitForSelector(`${row} [role=progressbar]`);
  await shot("02-search-downloading");
  await page.waitForSelector(`${row} .got`, { timeout: 90_000 });
  results.progress_seen = await page.evaluate(() => window.__progress);

  step("the search ends at its timeout without the slow publisher's file");
  await page.waitForFunction(() => !document.getElementById("search-submit").disabled, { timeout: 60_000 });
  results.search_ms = Date.now() - started;
  results.final_status = await page.$eval("#search-status", (el) => el.textContent);
  results.final_names = await page.$$eval("#search-body td.file-name", (cells) => cells.map((c) => c.textContent));
  if (results.final_names.includes(slowName)) throw new Error("the slow publisher's file was shown");
  await shot("03-search-done");

  step("the file is in My files");
  await nav("files");
  const mine = `#files-body tr[data-cid="${wantedCid}"]`;
  await page.waitForSelector(mine);
  results.files_row = (await page.$eval(mine, (el) => el.textContent)).replace(/\s+/g, " ").trim();

  step("a publisher's page lists exactly its listed files");
  await page.goto(new URL(`/#/peer/${publisher}`, setupLink).href);
  await visible("#page-peer");
  await page.waitForFunction(() => /listed/.test(document.getElementById("peer-status").textContent));
  results.peer_files = await page.$$eval("#peer-files-body td.file-name", (cells) => cells.map((c) => c.textContent).sort());
  const expected = [...publisherFiles].sort();
  if (JSON.stringify(results.peer_files) !== JSON.stringify(expected)) {
    throw new Error(`the peer page lists ${JSON.stringify(results.peer_files)}, not ${JSON.stringify(expected)}`);
  }
  await shot("04-peer");

  step("the peers view links to the peer's page");
  await nav("peers");
  await clickNow(`#peers-body tr[data-peer="${publisher}"] a.peer-link`);
  await visible("#page-peer");
  await page.waitForFunction((id) => document.getElementById("peer-title").textContent === id, {}, publisher);

  step("unlist the downloaded file and turn browsing off in My files");
  await nav("files");
  await clickNow(`${mine} [data-action="unlist"]`);
  await page.waitForSelector(`${mine} [data-action="list"]`);
  results.unlisted_row = (await page.$eval(mine, (el) => el.textContent)).replace(/\s+/g, " ").trim();
  await page.waitForFunction(() => document.getElementById("catalog-summary").textContent.includes("listed"));
  const wasChecked = await page.$eval("#catalog-browse", (el) => el.checked);
  if (!wasChecked) throw new Error("browsing was off already");
  await page.click("#catalog-browse");
  await page.waitForFunction(() => document.getElementById("toast").textContent.includes("no longer browse"));
  results.catalog_summary = await page.$eval("#catalog-summary", (el) => el.textContent);
  await shot("05-files");

  step("phone-sized screen");
  await page.setViewport({ width: 390, height: 844 });
  results.phone_overflow = {};
  for (const p of ["search", "files"]) {
    await nav(p);
    await painted(page);
    await shot(`06-phone-${p}`);
    results.phone_overflow[p] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  }
  results.problems = problems;
}

await run(main);
