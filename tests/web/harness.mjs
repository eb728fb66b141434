// What both browser tests share: their inputs from the environment, the step log, the
// watchdog that keeps them inside the Rust test's deadline, and the run that prints one
// JSON line of results on success or the failed step on stderr (exit code 1).

/** The value of environment variable `name`; throws if it is not set. */
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

/**
 * Resolves once the page has painted twice since the call: the layout of a page just
 * shown or resized is on screen (for a screenshot), without guessing a delay.
 */
export const painted = (page) =>
  page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

/** Timeout of one step, in ms. */
export const STEP = 30_000;

/**
 * A test run named `tag`: `log` writes to stderr, `step` records and logs a step,
 * `results` is printed as JSON at the end. `run(main, cleanup)` runs the test, closes
 * the browser `main` registered with `setBrowser`, then calls `cleanup`.
 */
export function testRun(tag) {
  const log = (...a) => console.error(`[${tag}]`, ...a);
  const results = { steps: [] };
  const step = (name) => { log(name); results.steps.push(name); };
  let browser;
  const closeBrowser = async () => {
    try { await browser?.close(); } catch { /* already gone */ }
  };
  // Never outlive the Rust test's own deadline: close the browser and give up.
  const watchdog = setTimeout(async () => {
    log("watchdog: giving up after 150 s");
    await closeBrowser();
    process.exit(3);
  }, 150_000);
  const run = async (main, cleanup = () => {}) => {
    try {
      await main();
      console.log(JSON.stringify(results));
    } catch (e) {
      log(`failed at step "${results.steps[results.steps.length - 1]}": ${e.stack || e}`);
      process.exitCode = 1;
    } finally {
      clearTimeout(watchdog);
      await closeBrowser();
      cleanup();
    }
  };
  return { log, results, step, run, setBrowser: (b) => { browser = b; } };
}

/**
 * Launches headless Chromium at `executablePath` the way both Chromium tests want it
 * (a fresh profile, nothing running in the background).
 */
export const launchChromium = (chromium, executablePath) =>
  chromium.launch({
    executablePath,
    headless: true,
    // Playwright gives every launch a fresh, empty profile directory.
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });

/**
 * Launches Chromium (registered with `setBrowser`, so that the run closes it), opens one
 * page of `viewport` size with the step timeout, and collects its page errors in
 * `problems`; returns the page, its context and `problems`.
 */
export async function chromiumPage(chromium, executablePath, setBrowser, viewport) {
  const browser = await launchChromium(chromium, executablePath);
  setBrowser(browser);
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return { context, page, problems };
}

/** Sets the owner's password through the one-time setup link and waits for the
 * dashboard (playwright `page`), as step `step` of the run. */
export async function setPasswordAndLogIn(page, step, setupLink, password) {
  step("set the password through the one-time setup link");
  await page.goto(setupLink);
  await page.locator("#setup-view").waitFor({ state: "visible" });
  await page.fill("#setup-password", password);
  await page.fill("#setup-repeat", password);
  await page.click("#setup-submit");
  await page.locator("#page-dashboard").waitFor({ state: "visible" });
}

/** Firefox preferences that keep a test browser off every network but 127.0.0.1: a
 * dead proxy, no DNS over HTTPS, no prefetch, update, telemetry or safe-browsing calls. */
export const FIREFOX_OFFLINE_PREFS = {
  "network.proxy.type": 1,
  "network.proxy.http": "127.0.0.1",
  "network.proxy.http_port": 9,
  "network.proxy.ssl": "127.0.0.1",
  "network.proxy.ssl_port": 9,
  "network.proxy.share_proxy_settings": true,
  "network.proxy.no_proxies_on": "127.0.0.1,localhost",
  "network.proxy.allow_hijacking_localhost": false,
  "network.trr.mode": 5,
  "network.dns.disablePrefetch": true,
  "network.prefetch-next": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "app.update.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "datareporting.healthreport.uploadEnabled": false,
  "toolkit.telemetry.enabled": false,
};
