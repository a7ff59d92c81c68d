// The mouth-to-ear bench's browser (bench/mouth_to_ear.sh): headless Chromium
// with a fake microphone playing a WAV file (looped) calls an icon of the demo
// page through the widget and, once in call, records for a while in one WebAudio
// graph two channels at 16 kHz: what its microphone sends (channel 0, the local
// track after Chromium's own processing) and what comes back (channel 1, the
// remote track), so both share the browser's one clock. Writes the WAV, prints a
// JSON report (connect time, WebRTC receive statistics).
// usage: node mouth2ear.mjs <page-url> <mic.wav> <icon-public-id> <seconds> <out.wav> [chromium flags…]
import { openBrowser } from "./browsers.mjs";
import { writeFileSync } from "node:fs";

const [pageUrl, wav, iconId, seconds, out, ...flags] = process.argv.slice(2);
const RATE = 16000;
const report = { icon: iconId, error: null };
const origin = new URL(pageUrl).origin;
const browser = await openBrowser("chromium", wav, {
  chromium: [`--unsafely-treat-insecure-origin-as-secure=${origin}`, ...flags],
});
const widget = `(window.offhookWidgets || []).find((w) => w.iconId === ${JSON.stringify(iconId)})`;
const chunks = [];
try {
  const page = await browser.newPage();
  page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
  await page.goto(pageUrl);
  await page.evaluate((icon) => {
    if (document.querySelector(`.offhook-widget[data-icon="${icon}"]`)) return;
    const script = document.createElement("script");
    script.src = "/widget.js";
    script.dataset.icon = icon;
    document.body.appendChild(script);
  }, iconId);
  const until = (fn, arg, timeout) => page.waitForFunction(fn, { timeout, polling: 100 }, arg);
  await until((find) => { const w = eval(find); return w && w.info; }, widget, 10000);
  const clicked = Date.now();
  await (await page.evaluateHandle((find) => eval(find).el.call, widget)).click();
  await until((find) => eval(find).state === "in-call", widget, 30000);
  report.connectMs = Date.now() - clicked;
  await page.evaluate(async (find, rate) => {
    const w = eval(find);
    const audio = (list) => list.map((x) => x.track).find((t) => t && t.kind === "audio");
    const ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.resume();
    const merger = ctx.createChannelMerger(2);
    ctx.createMediaStreamSource(new MediaStream([audio(w.pc.getSenders())])).connect(merger, 0, 0);
    ctx.createMediaStreamSource(new MediaStream([audio(w.pc.getReceivers())])).connect(merger, 0, 1);
    const tap = ctx.createScriptProcessor(4096, 2, 1);
    const mute = ctx.createGain();
    mute.gain.value = 0;
    merger.connect(tap);
    tap.connect(mute).connect(ctx.destination);
    const step = ctx.sampleRate / rate;
    window.m2eTaken = [];
    // The mean of each `step` samples (a crude low-pass before decimating), the
    // partial one carried over to the next buffer so no sample is lost.
    let sum = [0, 0], count = 0;
    tap.onaudioprocess = (e) => {
      const [mouth, ear] = [e.inputBuffer.getChannelData(0), e.inputBuffer.getChannelData(1)];
      const pcm = new Int16Array(2 * Math.ceil(mouth.length / step));
      let n = 0;
      for (let i = 0; i < mouth.length; i++) {
        sum[0] += mouth[i];
        sum[1] += ear[i];
        if (++count === step) {
          pcm[n++] = Math.max(-1, Math.min(1, sum[0] / step)) * 32767;
          pcm[n++] = Math.max(-1, Math.min(1, sum[1] / step)) * 32767;
          sum = [0, 0];
          count = 0;
        }
      }
      window.m2eTaken.push(pcm.slice(0, n));
    };
    window.m2eKeep = [ctx, tap]; // alive until the page goes
  }, widget, RATE);
  // Pull what was recorded every 2 s (base64 of interleaved 16-bit samples).
  const take = () =>
    page.evaluate(() => {
      const parts = window.m2eTaken.splice(0);
      const bytes = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
      let at = 0;
      for (const p of parts) { bytes.set(new Uint8Array(p.buffer), at); at += p.byteLength; }
      let text = "";
      for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(text);
    });
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 2000));
    chunks.push(Buffer.from(await take(), "base64"));
  }
  report.inbound = await page.evaluate(async (find) => {
    const stats = await eval(find).pc.getStats();
    let inbound = null;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        inbound = {
          packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, jitterMs: s.jitter * 1000,
          concealedSamples: s.concealedSamples, totalSamplesReceived: s.totalSamplesReceived,
          jitterBufferDelayMs: s.jitterBufferEmittedCount ? (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount : null,
        };
      }
    });
    return inbound;
  }, widget);
  await (await page.evaluateHandle((find) => eval(find).el.hangup, widget)).click();
  await until((find) => eval(find).state === "ended", widget, 10000);
} catch (e) {
  report.error = String((e && e.stack) || e);
} finally {
  await browser.close();
}
const pcm = Buffer.concat(chunks);
const header = Buffer.alloc(44);
header.write("RIFF", 0); header.writeUInt32LE(36 + pcm.length, 4); header.write("WAVE", 8);
header.write("fmt ", 12); header.writeUInt32LE(16, 16); header.writeUInt16LE(1, 20); header.writeUInt16LE(2, 22);
header.writeUInt32LE(RATE, 24); header.writeUInt32LE(RATE * 4, 28); header.writeUInt16LE(4, 32); header.writeUInt16LE(16, 34);
header.write("data", 36); header.writeUInt32LE(pcm.length, 40);
writeFileSync(out, Buffer.concat([header, pcm]));
report.recordedS = pcm.length / 4 / RATE;
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
