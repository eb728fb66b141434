// End-to-end test of the p2pd web UI in Debian's headless Chromium, driven by
// playwright-core. It is started by tests/tests/web_ui.rs, which runs two daemons
// (A, whose UI is tested, and B, which shares a file) and passes what it knows in the
// environment. It prints one JSON line of results on stdout; any failure exits non-zero
// with the reason on stderr. Screenshots go to $P2PD_SCREENSHOTS.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { env, launchChromium, painted, STEP, testRun } from "./harness.mjs";
import { chromium } from "playwright-core";

const setupLink = env("P2PD_SETUP_LINK");
const password = env("P2PD_PASSWORD");
const uploadFile = env("P2PD_UPLOAD_FILE");
const liveFile = env("P2PD_LIVE_FILE");
const remoteCid = env("P2PD_REMOTE_CID");
const remotePeer = env("P2PD_REMOTE_PEER");
const shots = env("P2PD_SCREENSHOTS");
const saveDir = env("P2PD_SAVE_DIR");
const p2pdBin = env("P2PD_BIN");
const dataDir = env("P2PD_DATA_DIR_A");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

mkdirSync(shots, { recursive: true });
const { log, results, step, run, setBrowser } = testRun("e2e");


async function main() {
  const browser = await launchChromium(chromium, executablePath);
  setBrowser(browser);
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // 401s after logout are expected; anything else logged as an error is a bug.
    if (m.type() === "error" && !/401|Unauthorized/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const shot = async (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const nav = async (pageName) => {
    await page.click(`#nav a[data-page="${pageName}"]`);
    await page.locator(`#page-${pageName}`).waitFor({ state: "visible" });
  };

  step("set the password through the one-time setup link");
  await page.goto(setupLink);
  await page.locator("#setup-view").waitFor({ state: "visible" });
  await shot("00-setup");
  await page.fill("#setup-password", password);
  await page.fill("#setup-repeat", password);
  await page.click("#setup-submit");
  await page.locator("#page-dashboard").waitFor({ state: "visible" });

  step("log out, fail with a wrong password, log in");
  await page.click("#logout");
  await page.locator("#login-view").waitFor({ state: "visible" });
  await page.fill("#login-password", "not the password");
  await page.click("#login-submit");
  await page.locator("#login-error", { hasText: "wrong password" }).waitFor();
  await shot("01-login");
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.locator("#page-dashboard").waitFor({ state: "visible" });
  await page.locator("#node-id").filter({ hasText: /^12D3Koo/ }).waitFor();

  step("set the display name");
  await page.fill("#name-input", "E2E laptop");
  await page.click("#name-form button");
  await page.locator("#top-name", { hasText: "E2E laptop" }).waitFor();
  await page.waitForFunction(() => !document.getElementById("toast").classList.contains("show"));
  results.node_id = await page.textContent("#node-id");

  step("upload a file and see it listed with its CID");
  await nav("files");
  await page.setInputFiles("#upload-input", uploadFile);
  await page.click("#upload-submit");
  const uploadedRow = page.locator("#files-body tr").filter({ has: page.locator("td.file-name", { hasText: basename(uploadFile) }) });
  await uploadedRow.waitFor();
  results.uploaded_cid = await uploadedRow.getAttribute("data-cid");
  const shownCid = await uploadedRow.locator("code.cid").textContent();
  if (shownCid !== results.uploaded_cid || !/^bafyr4/.test(shownCid)) throw new Error(`CID shown as ${shownCid}`);

  step("a file shared from the CLI appears without a reload");
  const before = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  execFileSync(p2pdBin, ["--data-dir", dataDir, "add", liveFile], { timeout: 60_000, stdio: ["ignore", "pipe", "pipe"] });
  await page.locator("#files-body td.file-name", { hasText: basename(liveFile) }).waitFor();
  const after = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  if (before !== after) throw new Error("the page reloaded");
  await shot("03-files");

  step("download the CID the second daemon shares and watch the bar reach 100%");
  await nav("downloads");
  // Record every value the progress bar shows, as the live events redraw it.
  await page.evaluate(() => {
    window.__progress = [];
    const record = () => {
      for (const bar of document.querySelectorAll("#downloads-list [role=progressbar]")) {
        const v = Number(bar.getAttribute("aria-valuenow"));
        const seen = window.__progress;
        if (seen[seen.length - 1] !== v) seen.push(v);
      }
    };
    new MutationObserver(record).observe(document.getElementById("downloads-list"), { childList: true, subtree: true, attributes: true });
  });
  await page.fill("#fetch-cid", remoteCid);
  await page.click("#fetch-submit");
  const card = page.locator(`#downloads-list .download[data-cid="${remoteCid}"]`);
  await card.waitFor();
  const percent = () => page.evaluate((cid) => {
    const bar = document.querySelector(`#downloads-list .download[data-cid="${cid}"] [role=progressbar]`);
    return bar ? Number(bar.getAttribute("aria-valuenow")) : -1;
  }, remoteCid);
  // The seeder sends slowly: the running download shows its speed, ETA and peers.
  await page.waitForFunction((cid) => {
    const bar = document.querySelector(`#downloads-list .download[data-cid="${cid}"] [role=progressbar]`);
    return bar && Number(bar.getAttribute("aria-valuenow")) >= 10;
  }, remoteCid);
  results.running_text = (await card.locator(".download-meta").textContent()).trim();
  await shot("04-downloads-running");

  step("pause the download, then resume it");
  await card.locator('[data-action="pause"]').click();
  await page.locator(`#downloads-list .download[data-cid="${remoteCid}"][data-state="paused"]`).waitFor();
  const pausedAt = await percent();
  // Not a wait for something: the window in which a paused download must not move.
  await page.waitForTimeout(1000);
  if ((await percent()) !== pausedAt) throw new Error("a paused download moved on");
  results.paused_at = pausedAt;
  await shot("04-downloads-paused");
  await card.locator('[data-action="resume"]').click();
  await card.locator('[role=progressbar][aria-valuenow="100"]').waitFor({ timeout: 90_000 });
  await page.locator(`#downloads-list .download[data-cid="${remoteCid}"][data-state="done"]`).waitFor();
  results.progress_seen = await page.evaluate(() => window.__progress);
  results.download_text = (await card.locator(".download-meta").textContent()).trim();
  await shot("04-downloads");

  step("save the finished download from the browser");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    card.locator('[data-action="save"]').click(),
  ]);
  results.saved_path = join(saveDir, download.suggestedFilename());
  await download.saveAs(results.saved_path);

  step("see the second daemon in the peers list");
  await nav("peers");
  const peerRow = page.locator(`#peers-body tr[data-peer="${remotePeer}"]`);
  await peerRow.waitFor();
  // The bytes it sent us (the downloaded file) are counted.
  await peerRow.locator('td[data-label="Received"]', { hasText: "MiB" }).waitFor();
  results.peer_row = (await peerRow.textContent()).replace(/\s+/g, " ").trim();
  // The reputation table (reputation.js) lists it too, with its score and trend.
  const repRow = page.locator(`#reputation-body tr[data-peer="${remotePeer}"]`);
  await repRow.waitFor();
  await repRow.locator('td[data-label="Received"]', { hasText: "MiB" }).waitFor();
  results.reputation_row = (await repRow.textContent()).replace(/\s+/g, " ").trim();
  results.reputation_trend = await repRow.locator("svg.trend").count();
  await shot("05-peers");

  step("the dashboard, after a few seconds of traffic");
  await nav("dashboard");
  // Shown once it counts the peer and has drawn the rate chart.
  await page.waitForFunction(() =>
    Number(document.querySelector("#stat-peers")?.textContent) >= 1
      && document.querySelector("#chart-max")?.textContent !== "");
  results.dashboard_peers = await page.textContent("#stat-peers");
  await shot("02-dashboard");

  step("phone-sized screen");
  await page.setViewportSize({ width: 390, height: 844 });
  for (const p of ["dashboard", "files", "downloads", "peers"]) {
    await nav(p);
    await painted(page);
    await shot(`06-phone-${p}`);
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 2) throw new Error(`the phone layout scrolls sideways by ${overflow}px`);
  await page.setViewportSize({ width: 1280, height: 860 });

  step("log out and be refused");
  await page.click("#logout");
  await page.locator("#login-view").waitFor({ state: "visible" });
  results.after_logout_status = await page.evaluate(() => fetch("/api/status").then((r) => r.status));
  results.after_logout_unpublish = await page.evaluate(
    (cid) => fetch(`/api/files/${cid}/unpublish`, { method: "POST" }).then((r) => r.status), results.uploaded_cid);
  await page.goto(new URL("/#/files", setupLink).href);
  await page.locator("#login-view").waitFor({ state: "visible" });
  if (await page.locator("#app").isVisible()) throw new Error("the app is shown after logout");
  await shot("07-logged-out");

  results.problems = problems;
  await context.close();
}

await run(main);
