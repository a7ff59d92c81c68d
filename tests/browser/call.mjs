// Real-browser click-to-call: headless Chromium with a fake microphone playing a
// tone WAV opens the demo page, clicks the call icon, waits for the call to be
// up, measures what comes back from the far end (WebAudio analyser on the remote
// stream), reads the media path (selected ICE candidate pair), hangs up, and
// prints a JSON report on stdout. With `close-tab`, the tab is closed as soon as
// the call is up instead (no hang-up: the WebSocket just goes away). With a
// stall, Chromium's audio service is stopped for that many ms once the call is
// up (a loaded machine: its capture goes on afterwards where it was), before
// the echo is measured.
// usage: node call.mjs <page-url> <tone.wav> [icon-public-id] [expect: in-call|failed] [chromium|firefox] [end: hang-up|close-tab] [link profile: auto|narrow|wide] [stall ms]
// (Firefox's fake microphone plays its own 1 kHz tone instead of the WAV.)
// The report also gives the level the browser decoded from what it received
// (inbound-rtp audio energy), beside what its audio graph played.
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { openBrowser } from "./browsers.mjs";

const [pageUrl, wav, iconId = "demo-echo", expect = "in-call", browserName = "chromium", end = "hang-up", linkProfile, stallMs] =
  process.argv.slice(2);
const report = { browser: browserName, states: [], error: null };
const deadline = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error("timeout: " + what)), ms));

// A page on another host than this one is served over plain HTTP here; a real
// site is HTTPS, the secure context browsers demand before opening the microphone.
const origin = new URL(pageUrl).origin;
const browser = await openBrowser(browserName, wav, {
  chromium: [
    `--unsafely-treat-insecure-origin-as-secure=${origin}`,
    // The test TURN server's TLS certificate is self-signed.
    "--ignore-certificate-errors",
  ],
  firefox: { "media.devices.insecure.enabled": true, "media.getusermedia.insecure.enabled": true },
});
let page;
const widget = `(window.offhookWidgets || []).find((w) => w.iconId === ${JSON.stringify(iconId)})`;
const until = (fn, arg, timeout) => page.waitForFunction(fn, { timeout, polling: 100 }, arg);
const click = async (button) => (await page.evaluateHandle((find, b) => eval(find).el[b], widget, button)).click();
// Bytes this host's network interfaces carried so far (what goes on the wire:
// IP packets with every header, ICE and RTCP included), loopback left out.
const wireBytes = () => {
  const read = (dev, what) => Number(readFileSync(`/sys/class/net/${dev}/statistics/${what}_bytes`, "utf8"));
  const devs = readdirSync("/sys/class/net").filter((d) => d !== "lo");
  return { sent: devs.reduce((n, d) => n + read(d, "tx"), 0), received: devs.reduce((n, d) => n + read(d, "rx"), 0) };
};
// Audio RTP counters now (getStats: payload bytes and packets each way), and the wire's.
const rtpCounts = () =>
  page.evaluate(async (find) => {
    const counts = { at: Date.now(), sent: { bytes: 0, packets: 0, lost: 0 }, received: { bytes: 0, packets: 0, lost: 0, energy: 0, duration: 0 } };
    (await eval(find).pc.getStats()).forEach((s) => {
      const dir = s.kind === "audio" && { "outbound-rtp": "sent", "inbound-rtp": "received" }[s.type];
      if (!dir) return;
      counts[dir].bytes += s.type === "outbound-rtp" ? s.bytesSent : s.bytesReceived;
      counts[dir].packets += s.type === "outbound-rtp" ? s.packetsSent : s.packetsReceived;
      counts[dir].lost += s.packetsLost || 0;
      if (dir === "received") {
        counts.received.energy += s.totalAudioEnergy || 0;
        counts.received.duration += s.totalSamplesDuration || 0;
      }
    });
    return counts;
  }, widget).then((counts) => ({ ...counts, wire: wireBytes() }));
// The processes of Chromium's audio service (its command line names the service).
const audioService = () =>
  readdirSync("/proc")
    .filter((pid) => /^\d+$/.test(pid))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("audio.mojom.AudioService");
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
const stallAudio = async (ms) => {
  const pids = audioService();
  if (pids.length === 0) throw new Error("no audio service process to stall");
  pids.forEach((pid) => process.kill(pid, "SIGSTOP"));
  await sleep(ms);
  pids.forEach((pid) => process.kill(pid, "SIGCONT"));
  report.stalledMs = Number(ms);
};
try {
  page = await browser.newPage();
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
  // Once the widget knows what the icon is: a refused one shows why before any click.
  await until((find) => { const w = eval(find); return w && w.info; }, widget, 10000);
  const refusedBeforeClick = ["closed", "disabled", "not-allowed", "unknown", "unavailable"];
  const shown = await page.evaluate((find) => eval(find).state, widget);
  // Connect time: from the click to the widget's "in call" (or its failure).
  // The site owner's data-link-profile, when one is given.
  if (linkProfile) await page.evaluate(([find, p]) => (eval(find).linkProfile = p), [widget, linkProfile]);
  const clicked = Date.now();
  if (!refusedBeforeClick.includes(shown)) await click("call");
  // "failed": the call failed, or the widget refused it before any click.
  const want = expect === "in-call" ? ["in-call"] : ["failed", ...refusedBeforeClick];
  await until(
    ([states, find]) => { const w = eval(find); return w && states.includes(w.state); },
    [want, widget],
    30000,
  );
  report.connectMs = Date.now() - clicked;
  report.link = await page.evaluate((find) => { const w = eval(find); return (w.call && w.call.link) || null; }, widget);
  if (expect === "in-call" && end === "close-tab") {
    report.states = await page.evaluate((find) => eval(find).history, widget);
    report.closedAtMs = Date.now();
    await page.close();
    report.status = "tab-closed";
  } else if (expect === "in-call") {
    if (stallMs) await stallAudio(Number(stallMs));
    const firstCounts = await rtpCounts();
    // Let the echo come back, then measure the remote audio for 2 s.
    report.audio = await Promise.race([
      page.evaluate(async (icon) => {
        const w = window.offhookWidgets.find((x) => x.iconId === icon);
        const track = w.pc.getReceivers().map((r) => r.track).find((t) => t && t.kind === "audio");
        const ctx = new AudioContext();
        await ctx.resume(); // Firefox starts it suspended
        // and may take a moment to run its graph
        for (let t = 0; t < 30 && ctx.currentTime === 0; t++) await new Promise((r) => setTimeout(r, 100));
        const source = ctx.createMediaStreamSource(new MediaStream([track]));
        const analyser = ctx.createAnalyser();
        analyser.fftSize = 4096;
        source.connect(analyser);
        const bins = new Float32Array(analyser.frequencyBinCount);
        const hz = ctx.sampleRate / analyser.fftSize;
        let best = { peakHz: 0, peakDb: -Infinity };
        for (let i = 0; i < 30; i++) {
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
        await ctx.resume(); // Firefox starts it suspended
        // and may take a moment to run its graph
        for (let t = 0; t < 30 && ctx.currentTime === 0; t++) await new Promise((r) => setTimeout(r, 100));
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
      const selected = (s) =>
        (s.type === "transport" && s.selectedCandidatePairId && stats.get(s.selectedCandidatePairId)) ||
        (s.type === "candidate-pair" && s.selected && s); // Firefox marks the pair itself
      stats.forEach((s) => {
        const pair = selected(s);
        if (pair) {
          const local = stats.get(pair.localCandidateId);
          const remote = stats.get(pair.remoteCandidateId);
          path = { local: local.candidateType, remote: remote.candidateType, relayProtocol: local.relayProtocol || null };
        }
      });
      return path;
    }, widget);
    // Audio RTP while in call: payload bit/s each way and the packet interval.
    const lastCounts = await rtpCounts();
    const seconds = (lastCounts.at - firstCounts.at) / 1000;
    const rate = (dir) => ({
      payloadBps: Math.round(((lastCounts[dir].bytes - firstCounts[dir].bytes) * 8) / seconds),
      packetMs: Math.round((seconds * 1000) / Math.max(1, lastCounts[dir].packets - firstCounts[dir].packets)),
      wireBps: Math.round(((lastCounts.wire[dir] - firstCounts.wire[dir]) * 8) / seconds),
      lost: lastCounts[dir].lost - firstCounts[dir].lost,
    });
    report.rtp = { seconds, sent: rate("sent"), received: rate("received") };
    // The level the browser decoded from what it received (inbound-rtp audio
    // energy over the same span), before its own audio graph plays it.
    const energy = lastCounts.received.energy - firstCounts.received.energy;
    const span = lastCounts.received.duration - firstCounts.received.duration;
    report.rtp.received.decodedDb = span > 0 && energy > 0 ? Math.round(100 * 10 * Math.log10(energy / span)) / 100 : null;
    await click("hangup");
    await until((find) => eval(find).state === "ended", widget, 10000);
  }
  if (report.status !== "tab-closed") {
    report.states = await page.evaluate((find) => eval(find).history, widget);
    report.status = await page.evaluate((find) => eval(find).state, widget);
    report.statusText = await page.evaluate((find) => eval(find).el.status.textContent, widget);
  }
} catch (e) {
  report.error = String(e && e.message ? e.message : e);
  // Where it stopped: the widget's states and status line so far.
  report.states = await page?.evaluate((find) => { const w = eval(find); return w ? w.history : []; }, widget).catch(() => []);
  report.statusText = await page?.evaluate((find) => { const w = eval(find); return w && w.el.status.textContent; }, widget).catch(() => null);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
