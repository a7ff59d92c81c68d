// The call-quality warning on a network that loses packets: headless Chromium
// (run by the test inside a network namespace whose loopback drops a share of
// UDP) calls the echo through the widget on the demo page and must show the
// poor-network warning, with the loss it measured from WebRTC statistics.
// Prints a JSON report; saves a screenshot.
// usage: node quality.mjs <demo-page-url> <tone.wav> <screenshot.png>
import { openBrowser } from "./browsers.mjs";

const [pageUrl, wav, screenshot] = process.argv.slice(2);
const report = { error: null, samples: [] };
const browser = await openBrowser("chromium", wav);
try {
  const page = await browser.newPage();
  page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
  await page.goto(pageUrl);
  const find = `(window.offhookWidgets || []).find((w) => w.iconId === "demo-echo")`;
  const state = () => page.evaluate((f) => { const w = eval(f); return w && { state: w.state, info: !!w.info }; }, find);
  for (let i = 0; i < 100 && !((await state()) || {}).info; i++) await new Promise((r) => setTimeout(r, 100));
  // Collect what the call's quality events say, then click.
  await page.evaluate((f) => {
    const w = eval(f);
    window.qualitySamples = [];
    const start = w.start.bind(w);
    w.start = () => {
      start();
      w.call.on("quality", (q) => window.qualitySamples.push(q));
    };
    w.host.shadowRoot.querySelector("button.call").click();
  }, find);
  const deadline = Date.now() + 60000;
  let shown = null;
  while (Date.now() < deadline) {
    shown = await page.evaluate((f) => {
      const w = eval(f);
      const q = w.host.shadowRoot.querySelector(".quality");
      return { state: w.state, level: w.host.dataset.quality || null, text: q.hidden ? "" : q.textContent, poor: q.classList.contains("poor") };
    }, find);
    if (shown.level === "poor" || shown.state === "failed" || shown.state === "ended") break;
    await new Promise((r) => setTimeout(r, 250));
  }
  report.shown = shown;
  report.samples = await page.evaluate(() => window.qualitySamples);
  await page.screenshot({ path: screenshot });
  await page.evaluate((f) => eval(f).call && eval(f).call.hangup(), find);
  await new Promise((r) => setTimeout(r, 1000));
} catch (e) {
  report.error = String((e && e.stack) || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
