// Browser test of the Relays page and the Open/Play button (issue 16), in Debian's
// headless Chromium driven by playwright-core. Started by tests/tests/relays.rs, which
// runs a relay (the bootstrap node) and node A (whose UI is used) holding a media file
// and another file. In the browser: add the relay by its address and see the
// reservation accepted and when it expires; play the media file (a <video> fed by the content route with
// Range requests); see the other file offered as a download; drop the relay. Prints one
// JSON line of results.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromiumPage, env, setPasswordAndLogIn, testRun } from "./harness.mjs";
import { chromium } from "playwright-core";

const setupLink = env("P2PD_SETUP_LINK");
const password = env("P2PD_PASSWORD");
const relayAddr = env("P2PD_RELAY_ADDR");
const relayPeer = env("P2PD_RELAY_PEER");
const mediaCid = env("P2PD_MEDIA_CID");
const otherCid = env("P2PD_OTHER_CID");
const shots = env("P2PD_SCREENSHOTS");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

mkdirSync(shots, { recursive: true });
const { results, step, run, setBrowser } = testRun("relays");

async function main() {
  const { page, problems } = await chromiumPage(chromium, executablePath, setBrowser, { width: 1280, height: 900 });
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("dialog", (d) => d.accept());
  const ranges = [];
  page.on("request", (r) => {
    if (r.url().includes(`/api/files/${mediaCid}/content`)) ranges.push(r.headers()["range"] || "");
  });
  const shot = async (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  await setPasswordAndLogIn(page, step, setupLink, password);

  step("add the relay on the Relays page and see its reservation accepted");
  await page.click('#nav a[data-page="relays"]');
  await page.locator("#page-relays").waitFor({ state: "visible" });
  await page.fill("#relay-addr", relayAddr);
  await page.click("#relay-submit");
  const row = page.locator(`#relays-body tr[data-peer="${relayPeer}"]`);
  await row.waitFor();
  await page.locator(`#relays-body tr[data-peer="${relayPeer}"][data-reservation="accepted"]`)
    .waitFor({ timeout: 20_000 });
  results.relay_row = await row.innerText();
  step("see when the reservation expires");
  const expires = row.locator('td[data-label="Expires"][data-expires]');
  await expires.waitFor({ timeout: 30_000 });
  results.relay_expires_unix = Number(await expires.getAttribute("data-expires"));
  results.relay_expires_text = await expires.innerText();
  results.page_now_unix = await page.evaluate(() => Date.now() / 1000);
  await shot("relays");

  step("a bad address is refused with the daemon's message");
  await page.fill("#relay-addr", "/ip4/127.0.0.1/tcp/1");
  await page.click("#relay-submit");
  await page.waitForFunction(() => document.getElementById("relay-error").textContent.length > 0);
  results.bad_address_error = await page.locator("#relay-error").innerText();
  problems.splice(0, problems.length, ...problems.filter((p) => !/status of 400/.test(p)));

  step("play the media file from the files page");
  await page.click('#nav a[data-page="files"]');
  const media = page.locator(`#files-body tr[data-cid="${mediaCid}"] [data-action="open"]`);
  await media.waitFor();
  results.media_button = await media.innerText();
  await media.click();
  await page.locator("#player[open] video").waitFor();
  results.player_src = await page.locator("#player video").getAttribute("src");
  await page.waitForFunction(() => document.querySelector("#player video").readyState >= 0);
  // The browser asks for the file by Range as it plays (or tries to).
  await page.waitForFunction(() => performance.getEntriesByType("resource")
    .some((e) => e.name.includes("/content")));
  await shot("player");
  await page.click('#player [data-action="close-player"]');
  await page.locator("#player[open]").waitFor({ state: "detached" });
  results.ranges = ranges;

  step("the other file is offered as a download");
  const other = page.locator(`#files-body tr[data-cid="${otherCid}"] [data-action="open"]`);
  results.other_button = await other.innerText();
  const [download] = await Promise.all([page.waitForEvent("download"), other.click()]);
  results.downloaded_name = download.suggestedFilename();
  await download.cancel();

  step("drop the relay");
  await page.click('#nav a[data-page="relays"]');
  await row.locator('[data-action="drop-relay"]').click();
  await page.locator(`#relays-body tr[data-peer="${relayPeer}"][data-reservation="accepted"]`)
    .waitFor({ state: "detached" });
  results.problems = problems;
}

run(main);
