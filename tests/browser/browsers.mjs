// Real browsers for the widget tests, both driven by puppeteer-core: Debian's
// headless Chromium over the DevTools protocol, and Debian's Firefox ESR over
// WebDriver BiDi. Both without network beyond this machine, with a fake
// microphone (Chromium plays a WAV file; Firefox its own tone) and loopback ICE.
// Also: axe-core's scan of a page, serious and critical violations only.
import puppeteer from "puppeteer-core";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
];

const FIREFOX_PREFS = {
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.peerconnection.ice.loopback": true,
  "media.autoplay.default": 0,
  "media.autoplay.block-webaudio": false,
  "network.proxy.type": 0,
  "app.update.enabled": false,
  "browser.shell.checkDefaultBrowser": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.enabled": false,
};

// A browser's first start on a fresh machine builds its font cache and profile:
// far longer than puppeteer's 30 s default on a slow disk.
const LAUNCH_TIMEOUT_MS = 120_000;

/// `name` is `chromium` or `firefox`; with `wav`, Chromium's microphone plays it;
/// `extra.chromium` are more command-line flags, `extra.firefox` more prefs.
export function openBrowser(name, wav, extra = {}) {
  const common = { headless: true, timeout: LAUNCH_TIMEOUT_MS };
  if (name === "firefox") {
    return puppeteer.launch({
      ...common,
      browser: "firefox",
      executablePath: "/usr/bin/firefox-esr",
      extraPrefsFirefox: { ...FIREFOX_PREFS, ...(extra.firefox || {}) },
    });
  }
  const args = [...CHROMIUM_ARGS, ...(wav ? [`--use-file-for-fake-audio-capture=${wav}`] : []), ...(extra.chromium || [])];
  return puppeteer.launch({ ...common, browser: "chrome", executablePath: "/usr/bin/chromium", args });
}

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/// axe-core's serious and critical violations on the page (shadow DOM included):
/// `[{ id, impact, help, targets }]`.
export async function axeViolations(page) {
  await page.evaluate(AXE);
  const results = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 5),
    }));
  });
  return results.filter((v) => v.impact === "serious" || v.impact === "critical");
}
