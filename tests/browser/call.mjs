// Real-browser click-to-call: headless Chromium with a fake microphone playing a
// tone WAV opens the demo page, clicks the call icon, waits for the call to be
// up, measures what comes back from the far end (WebAudio analyser on the remote
// stream), reads the media path (selected ICE candidate pair), hangs up, and
// prints a JSON report on stdout. With `close-tab`, the tab is closed as soon as
// the call is up instead (no hang-up: the WebSocket just goes away).
// usage: node call.mjs <page-url> <tone.wav> [icon-public-id] [expect: in-call|failed] [end: hang-up|close-tab]
import { launch } from "./launch.mjs";

const [pageUrl, wav, iconId = "demo-echo", expect = "in-call", end = "hang-up"] = process.argv.slice(2);
const report = { states: [], error: null };
const deadline = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error("timeout: " + what)), ms));

const browser = await launch(wav, ["--autoplay-policy=no-user-gesture-required"]);
try {
  const page = await browser.newPage();
  page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
  await page.goto(pageUrl);
  // Like a site owner's page: embed the icon's widget if the page does not show it.
  await page.evaluate((icon) => {
    if (document.querySelector(`.offhook-widget[data-icon="${icon}"]`)) return;
    const script = document.createElement("script");
    script.src = "/widget.js";
    script.dataset.icon = icon;
    document.body.appendChild(script);
  }, iconId);
  const host = page.locator(`.offhook-widget[data-icon="${iconId}"]`);
  const widget = `(window.offhookWidgets || []).find((w) => w.iconId === ${JSON.stringify(iconId)})`;
  // Once the widget knows what the icon is: a refused one shows why before any click.
  await page.waitForFunction((find) => { const w = eval(find); return w && w.info; }, widget, { timeout: 10000 });
  const refusedBeforeClick = ["closed", "disabled", "not-allowed", "unknown", "unavailable"];
  const shown = await page.evaluate((find) => eval(find).state, widget);
  if (!refusedBeforeClick.includes(shown)) await host.locator("button.call").click();
  // "failed": the call failed, or the widget refused it before any click.
  const want = expect === "in-call" ? ["in-call"] : ["failed", ...refusedBeforeClick];
  await page.waitForFunction(
    ([states, find]) => { const w = eval(find); return w && states.includes(w.state); },
    [want, widget],
    { timeout: 30000 },
  );
  if (expect === "in-call" && end === "close-tab") {
    report.states = await page.evaluate((find) => eval(find).history, widget);
    report.closedAtMs = Date.now();
    await page.close();
    report.status = "tab-closed";
  } else if (expect === "in-call") {
    // Let the echo come back, then measure the remote audio for 2 s.
    report.audio = await Promise.race([
      page.evaluate(async (icon) => {
        const w = window.offhookWidgets.find((x) => x.iconId === icon);
        const track = w.pc.getReceivers().map((r) => r.track).find((t) => t && t.kind === "audio");
        const ctx = new AudioContext();
        const source = ctx.createMediaStreamSource(new MediaStream([track]));
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 4096;
        source.connect(analyser);
        const bins = new Float32Array(analyser.frequencyBinCount);
        const hz = ctx.sampleRate / analyser.fftSize;
        let best = { peakHz: 0, peakDb: -Infinity };
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 100));
          analyser.getFloatFrequencyData(bins);
          for (let b = 5; b < bins.length; b++) {
            if (bins[b] > best.peakDb) best = { peakHz: b * hz, peakDb: bins[b] };
          }
        }
        return best;
      }, iconId),
      deadline(15000, "audio measurement"),
    ]);
    // A key press: the relay plays its DTMF tone into the line; the echo brings it back.
    report.dtmf = await Promise.race([
      page.evaluate(async (find) => {
        const w = eval(find);
        const track = w.pc.getReceivers().map((r) => r.track).find((t) => t && t.kind === "audio");
        const ctx = new AudioContext();
        const source = ctx.createMediaStreamSource(new MediaStream([track]));
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 4096;
        source.connect(analyser);
        const bins = new Float32Array(analyser.frequencyBinCount);
        const level = (hz) => bins[Math.round((hz * analyser.fftSize) / ctx.sampleRate)];
        const watch = async (ms) => {
          let best = -Infinity;
          for (let t = 0; t < ms; t += 50) {
            await new Promise((r) => setTimeout(r, 50));
            analyser.getFloatFrequencyData(bins);
            best = Math.max(best, Math.min(level(770), level(1336)));
          }
          return best;
        };
        const before = await watch(600);
        // Sent as RFC 4733 only (Chromium puts no tone in the audio): what comes
        // back is the line's own playing of the key.
        const sent = w.sendDtmf("5");
        const during = await watch(1200);
        return { before, during, sent, shown: w.host.dataset.digits || "" };
      }, widget),
      deadline(15000, "DTMF measurement"),
    ]);
    report.codecs = await page.evaluate(async (find) => {
      const stats = await eval(find).pc.getStats();
      const codecs = {};
      stats.forEach((s) => {
        if ((s.type === "inbound-rtp" || s.type === "outbound-rtp") && s.kind === "audio" && s.codecId) {
          codecs[s.type] = stats.get(s.codecId).mimeType;
        }
      });
      return codecs;
    }, widget);
    // The media path: the selected candidate pair's local and remote types
    // (host, srflx, prflx, relay) and the TURN transport when relayed.
    report.path = await page.evaluate(async (find) => {
      const stats = await eval(find).pc.getStats();
      let path = null;
      stats.forEach((s) => {
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const pair = stats.get(s.selectedCandidatePairId);
          const local = stats.get(pair.localCandidateId);
          const remote = stats.get(pair.remoteCandidateId);
          path = { local: local.candidateType, remote: remote.candidateType, relayProtocol: local.relayProtocol || null };
        }
      });
      return path;
    }, widget);
    await host.locator("button.hangup").click();
    await page.waitForFunction((find) => eval(find).state === "ended", widget, { timeout: 10000 });
  }
  if (report.status !== "tab-closed") {
    report.states = await page.evaluate((find) => eval(find).history, widget);
    report.status = await page.evaluate((find) => eval(find).state, widget);
    report.statusText = await host.locator(".status").textContent();
  }
} catch (e) {
  report.error = String(e && e.message ? e.message : e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
