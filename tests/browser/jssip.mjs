// A second real SIP client: JsSIP (from npm) in headless Chromium calls an icon
// with a call token from the click API, over offhook's SIP WebSocket, waits for
// the call to be confirmed, then hangs up. Prints a JSON report on stdout.
// usage: node jssip.mjs <page-url-on-an-allowed-origin> <icon-public-id> <tone.wav>
import { launch } from "./launch.mjs";
import { createRequire } from "node:module";
import { buildSync } from "esbuild";

const [pageUrl, iconId, wav] = process.argv.slice(2);
const require = createRequire(import.meta.url);
// npm's JsSIP ships CommonJS only: bundle it for the page with esbuild.
const bundle = buildSync({
  entryPoints: [require.resolve("jssip")],
  bundle: true,
  format: "iife",
  globalName: "JsSIPModule",
  platform: "browser",
  write: false,
});
const jssip = bundle.outputFiles[0].text + "\nwindow.JsSIP = JsSIPModule.default || JsSIPModule;";
const report = { events: [], error: null };

const browser = await launch(wav);
try {
  const page = await browser.newPage();
  page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
  await page.goto(pageUrl);
  await page.addScriptTag({ content: jssip });
  report.events = await page.evaluate(async (icon) => {
    const events = [];
    const res = await fetch(`/api/v1/icons/${encodeURIComponent(icon)}/calls`, { method: "POST", body: "{}" });
    const grant = await res.json();
    if (!res.ok) throw new Error(grant.error);
    const socket = new JsSIP.WebSocketInterface(grant.ws_url);
    const ua = new JsSIP.UA({
      sockets: [socket],
      uri: `sip:visitor@${grant.domain}`,
      register: false,
    });
    await new Promise((resolve, reject) => {
      ua.on("connected", resolve);
      setTimeout(() => reject(new Error("JsSIP did not connect")), 10000);
      ua.start();
    });
    await new Promise((resolve, reject) => {
      const session = ua.call(grant.target, {
        extraHeaders: [`X-Offhook-Token: ${grant.token}`],
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: [] },
      });
      session.on("progress", () => events.push("progress"));
      session.on("confirmed", () => {
        events.push("confirmed");
        setTimeout(() => session.terminate(), 1000);
      });
      session.on("ended", () => {
        events.push("ended");
        resolve();
      });
      session.on("failed", (e) => {
        events.push("failed:" + e.cause);
        reject(new Error("call failed: " + e.cause));
      });
      setTimeout(() => reject(new Error("JsSIP call timed out")), 30000);
    });
    ua.stop();
    return events;
  }, iconId);
} catch (e) {
  report.error = String(e && e.message ? e.message : e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
