// offhook's JavaScript API for site owners who build their own button, in the
// spirit of Twilio's Voice SDK Device/Call:
//
//   const device = Offhook.device({ icon: "PUBLIC_ID" });   // server: this script's origin
//   const info = await device.info();   // { status: "ready" | "closed" | "disabled" |
//                                        //   "not-allowed" | "unknown" | "unavailable", ... }
//   const call = device.connect();      // or connect({ linkProfile: "narrow" | "wide" })
//   call.on("state", (state, detail) => …);  // connecting, ringing, in-call, ended, failed
//   call.on("error", (error) => …);          // { code, message, retryAfter }
//   call.on("quality", (sample) => …);       // { rttMs, jitterMs, lossPercent, level, warnings }
//   call.on("dtmf", (digit) => …);           // a key sent into the call
//   call.sendDigits("12#"); call.mute(true); call.hangup();
//   call.why;   // once ended: the gateway's reason when it ended the call ("no audio path")
//   call.link;  // { profile: "narrow" | "wide", clickMs, scriptKbps }: the media profile asked for
//
// A call's WebRTC connection is made by `createPeerConnection` from
// `rtcConfiguration(grant)`, one place each. Uses `OffhookSip` (sipws.js).
(function () {
  "use strict";

  // Poor network: any figure past its threshold in 2 of the last 3 samples (1 s
  // apart); the thresholds are Twilio's warning levels.
  const THRESHOLDS = { rttMs: 400, jitterMs: 30, lossPercent: 3 };
  const WARNINGS = { rttMs: "high-rtt", jitterMs: "high-jitter", lossPercent: "high-packet-loss" };
  const SAMPLE_MS = 1000;

  // The final SIP status of a failed call -> the error code shown for it.
  const SIP_FAILURES = {
    404: "not-found",
    408: "no-answer",
    480: "no-answer",
    486: "busy",
    488: "unsupported",
    503: "all-lines-busy",
    600: "busy",
  };

  // The RTCPeerConnection configuration of a call, from its grant (the click
  // API's answer). This is where ICE servers from the grant go.
  function rtcConfiguration(grant) {
    return { iceServers: Array.isArray(grant.ice_servers) ? grant.ice_servers : [] };
  }

  // Narrow links (a visitor on a dial-up modem, ~33.6 kbit/s): the offer asks
  // for Opus at 16 kbit/s at most in 60 ms packets; the relay answers and sends
  // the same. The call's `linkProfile` option, else the grant's `link_profile`
  // ("auto" unless configured), decides; on auto, a narrow link is one that
  // brought this very script down slower than SLOW_LINK_KBPS (Resource Timing:
  // its encoded size over first to last byte; the server allows the timing to
  // any page; a cached or small copy tells nothing), or a click API round trip
  // (request to response headers) this slow, or the browser's own estimate of
  // its link (Network Information API, Chromium) at 2g or below. Below 100
  // kbit/s the default Opus (~32 kbit/s plus ~20 kbit/s of headers each way)
  // has no room left.
  const NARROW = { maxaveragebitrate: 16000, ptimeMs: 60 };
  const SLOW_LINK_KBPS = 100;
  const SLOW_CLICK_MS = 1000;
  const SLOW_LINK_TYPES = ["slow-2g", "2g"];
  const TELLING_SCRIPT_BYTES = 8192;

  function scriptKbps() {
    const entries = (performance.getEntriesByType && performance.getEntriesByType("resource")) || [];
    const entry = entries.find((e) => /\/widget\.js(\?|$)/.test(e.name));
    const ms = entry ? entry.responseEnd - entry.responseStart : 0;
    if (!entry || !(entry.encodedBodySize >= TELLING_SCRIPT_BYTES) || !(ms > 0)) return null;
    return Math.round((entry.encodedBodySize * 8) / ms); // bits per ms: kbit/s
  }

  function linkProfile(chosen, clickMs, kbps) {
    if (chosen === "narrow" || chosen === "wide") return chosen;
    const estimate = navigator.connection && navigator.connection.effectiveType;
    const slow = (kbps !== null && kbps < SLOW_LINK_KBPS) || clickMs >= SLOW_CLICK_MS || SLOW_LINK_TYPES.includes(estimate);
    return slow ? "narrow" : "wide";
  }

  // The offer as sent for `profile`: for a narrow link, the Opus fmtp gets
  // maxaveragebitrate and the audio section a=ptime/a=maxptime (RFC 7587, 4566).
  function offerFor(sdp, profile) {
    const opus = profile === "narrow" && /a=rtpmap:(\d+) opus\/48000/i.exec(sdp);
    if (!opus) return sdp;
    const fmtp = "a=fmtp:" + opus[1] + " ";
    const lines = sdp.split("\r\n");
    const at = lines.findIndex((l) => l.startsWith(fmtp));
    const packing = ["a=ptime:" + NARROW.ptimeMs, "a=maxptime:" + NARROW.ptimeMs];
    const bitrate = "maxaveragebitrate=" + NARROW.maxaveragebitrate;
    if (at >= 0) {
      lines[at] += ";" + bitrate;
      lines.splice(at + 1, 0, ...packing);
    } else {
      const rtpmap = lines.findIndex((l) => l.startsWith("a=rtpmap:" + opus[1] + " "));
      lines.splice(rtpmap + 1, 0, fmtp + bitrate, ...packing);
    }
    return lines.join("\r\n");
  }

  // No candidate pair works (ICE failed, or is still not connected this long
  // after the gateway's answer, early media's or the final one): the call is
  // reported and ended within 15 s of the click.
  const ICE_DEADLINE_MS = 12000;
  // The Reason text of the gateway's BYE when a call's media never flowed.
  const NO_MEDIA_REASON = "no audio path";

  // The one place a call's RTCPeerConnection is made.
  function createPeerConnection(configuration) {
    return new RTCPeerConnection(configuration);
  }

  class Emitter {
    constructor() {
      this.handlers = {};
    }
    on(event, handler) {
      (this.handlers[event] = this.handlers[event] || []).push(handler);
      return this;
    }
    off(event, handler) {
      this.handlers[event] = (this.handlers[event] || []).filter((h) => h !== handler);
      return this;
    }
    emit(event, ...args) {
      for (const handler of this.handlers[event] || []) {
        try {
          handler(...args);
        } catch (e) {
          console.error("offhook: a '" + event + "' handler failed", e);
        }
      }
    }
  }

  // The figures of one getStats() report, given the previous sample's counters.
  function sample(report, previous) {
    let rtt = null, jitter = null, lost = 0, received = 0, pairId = null;
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
    });
    report.forEach((s) => {
      if (s.type === "candidate-pair" && (s.id === pairId || (!pairId && s.nominated)) && s.currentRoundTripTime != null) {
        rtt = s.currentRoundTripTime * 1000;
      }
      if (s.type === "remote-inbound-rtp" && s.kind === "audio" && rtt == null && s.roundTripTime != null) {
        rtt = s.roundTripTime * 1000;
      }
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        if (s.jitter != null) jitter = s.jitter * 1000;
        lost = s.packetsLost || 0;
        received = s.packetsReceived || 0;
      }
    });
    const dLost = Math.max(0, lost - (previous ? previous.lost : 0));
    const dReceived = Math.max(0, received - (previous ? previous.received : 0));
    const lossPercent = dLost + dReceived > 0 ? (100 * dLost) / (dLost + dReceived) : 0;
    return {
      rttMs: rtt == null ? null : Math.round(rtt),
      jitterMs: jitter == null ? null : Math.round(jitter),
      lossPercent: Math.round(lossPercent * 10) / 10,
      counters: { lost, received },
    };
  }

  class Call extends Emitter {
    constructor(device, options) {
      super();
      this.device = device;
      this.options = options || {};
      this.state = "connecting";
      this.error = null;
      this.muted = false;
      this.quality = null;
      this.answeredAt = 0;
      this.pc = null;
      this.stream = null;
      this.sip = null;
      this.audio = new Audio();
      this.samples = [];
      this.earlyMedia = false;
      this.link = null;
      // Events are emitted after connect() returns, so handlers can be added first.
      setTimeout(() => this.start(), 0);
    }

    setState(state, detail) {
      if (this.state === "ended" || this.state === "failed") return;
      this.state = state;
      // Our own ringback only while the line sends no early media of its own.
      if (state === "ringing" && !this.earlyMedia) this.startRingback();
      else this.stopRingback();
      if (state === "in-call") {
        this.answeredAt = Date.now();
        this.startQuality();
      }
      this.emit("state", state, detail);
    }

    fail(code, message, retryAfter) {
      if (this.state === "ended" || this.state === "failed") return;
      this.error = { code, message: message || code, retryAfter: retryAfter || null };
      this.cleanup();
      this.emit("error", this.error);
      this.setState("failed", code);
    }

    finish(detail) {
      this.cleanup();
      this.setState("ended", detail);
    }

    async start() {
      this.emit("state", "connecting");
      const url = this.device.server + "/api/v1/icons/" + encodeURIComponent(this.device.icon) + "/calls";
      let grant, clickMs;
      try {
        // A simple request (no custom headers): no preflight round trip.
        const sent = performance.now();
        const response = await fetch(url, { method: "POST" });
        clickMs = Math.round(performance.now() - sent);
        grant = await response.json().catch(() => ({}));
        if (!response.ok) {
          const retryAfter = Number(response.headers.get("retry-after")) || null;
          return this.fail(grant.code || "failed", grant.error, retryAfter);
        }
      } catch (e) {
        return this.fail("server-unreachable", e.message);
      }
      if (this.state !== "connecting") return;
      const chosen = this.options.linkProfile || grant.link_profile;
      const kbps = scriptKbps();
      this.link = { profile: linkProfile(chosen, clickMs, kbps), clickMs, scriptKbps: kbps };
      // Browsers offer the microphone only to pages served over HTTPS (or from
      // localhost): say so rather than blame the microphone.
      if (!navigator.mediaDevices) return this.fail("insecure-page");
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (e) {
        return this.fail("microphone", e.message);
      }
      if (this.state !== "connecting") return this.cleanup();
      const pc = createPeerConnection(rtcConfiguration(grant));
      this.pc = pc;
      for (const track of this.stream.getAudioTracks()) pc.addTrack(track, this.stream);
      pc.ontrack = (ev) => {
        this.audio.srcObject = ev.streams[0] || new MediaStream([ev.track]);
        this.audio.play().catch(() => {});
      };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
        setTimeout(resolve, 2000);
      });
      if (this.state !== "connecting") return this.cleanup();
      const sip = new window.OffhookSip.Call({
        wsUrl: grant.ws_url,
        target: grant.target,
        domain: grant.domain,
        token: grant.token,
        onState: (s) => (s === "ringing" || s === "in-call") && this.setState(s),
        onAnswer: (sdp) => this.applyAnswer(pc, sdp),
        // Early media (183 with SDP): the line's own ringback, busy tone or
        // announcement plays from now; the same answer comes again with the 200.
        onEarlyMedia: (sdp) => {
          this.earlyMedia = true;
          this.stopRingback();
          this.applyAnswer(pc, sdp);
        },
        onEnd: (reason, status, why) => this.sipEnded(reason, status, why),
      });
      this.sip = sip;
      try {
        await sip.connect();
      } catch (e) {
        return this.fail("server-unreachable", e.message);
      }
      sip.invite(offerFor(pc.localDescription.sdp, this.link.profile));
    }

    // The gateway's answer (early media's or the final one): applied, and
    // from the first one media must connect in time.
    applyAnswer(pc, sdp) {
      pc.setRemoteDescription({ type: "answer", sdp })
        .then(() => this.watchIce(pc))
        .catch((e) => this.fail("unsupported", e.message));
    }

    // Media must connect by ICE_DEADLINE_MS after the (first) answer.
    watchIce(pc) {
      if (this.iceTimer) return;
      const connected = () => ["connected", "completed"].includes(pc.iceConnectionState);
      pc.addEventListener("iceconnectionstatechange", () => pc.iceConnectionState === "failed" && this.noMedia());
      this.iceTimer = setTimeout(() => connected() || this.noMedia(), ICE_DEADLINE_MS);
    }

    // No media path: reported as such, and the far end gets a BYE saying so
    // (its record ends as no-audio-path) or a CANCEL.
    noMedia() {
      const sip = this.sip;
      this.fail("no-media", "no ICE candidate pair works (firewall or NAT)");
      if (sip) sip.hangup(OffhookVocab.noAudioPath);
    }

    // How the SIP side ended -> ended or failed, with its reason.
    sipEnded(reason, status, why) {
      if (this.state === "ended" || this.state === "failed") return;
      this.why = why;
      if (status && status >= 300 && status !== 487) {
        return this.fail(SIP_FAILURES[status] || "failed", reason);
      }
      if (reason === "connection lost") return this.fail("connection-lost", reason);
      // The gateway gave up first on the call's media (its BYE's Reason text):
      // the same failure as the widget's own deadline.
      if (why === NO_MEDIA_REASON) return this.fail("no-media", why);
      this.finish(reason === "the other side hung up" ? "remote" : "local");
    }

    hangup() {
      if (this.sip) this.sip.hangup();
      else this.finish("local");
    }

    mute(muted) {
      this.muted = muted === undefined ? !this.muted : Boolean(muted);
      if (this.stream) for (const t of this.stream.getAudioTracks()) t.enabled = !this.muted;
      return this.muted;
    }

    sendDigits(digits) {
      const sender = this.pc && this.pc.getSenders().find((s) => s.dtmf);
      if (!sender || !sender.dtmf.canInsertDTMF) return false;
      sender.dtmf.ontonechange = (ev) => ev.tone && this.emit("dtmf", ev.tone);
      sender.dtmf.insertDTMF(String(digits).replace(/[^0-9*#]/g, ""), 120, 70);
      return true;
    }

    startQuality() {
      this.qualityTimer = setInterval(async () => {
        if (!this.pc) return;
        const report = await this.pc.getStats().catch(() => null);
        if (!report) return;
        const previous = this.samples.length ? this.samples[this.samples.length - 1].counters : null;
        const figures = sample(report, previous);
        this.samples = [...this.samples.slice(-2), figures];
        const warnings = Object.keys(THRESHOLDS)
          .filter((k) => this.samples.filter((s) => s[k] != null && s[k] > THRESHOLDS[k]).length >= 2)
          .map((k) => WARNINGS[k]);
        this.quality = {
          rttMs: figures.rttMs,
          jitterMs: figures.jitterMs,
          lossPercent: figures.lossPercent,
          level: warnings.length ? "poor" : "good",
          warnings,
        };
        this.emit("quality", this.quality);
      }, SAMPLE_MS);
    }

    // Ringback: 425 Hz, 1 s on, 4 s off (ITU-T E.180), from WebAudio.
    startRingback() {
      if (this.ringback || this.options.ringback === false) return;
      try {
        const ctx = new AudioContext();
        const gain = ctx.createGain();
        gain.gain.value = 0;
        const osc = ctx.createOscillator();
        osc.frequency.value = 425;
        osc.connect(gain).connect(ctx.destination);
        osc.start();
        const cycle = () => {
          const t = ctx.currentTime;
          gain.gain.setValueAtTime(0.1, t);
          gain.gain.setValueAtTime(0, t + 1);
        };
        cycle();
        this.ringback = { ctx, interval: setInterval(cycle, 5000) };
      } catch (e) {
        this.ringback = null;
      }
    }

    stopRingback() {
      if (!this.ringback) return;
      clearInterval(this.ringback.interval);
      this.ringback.ctx.close();
      this.ringback = null;
    }

    cleanup() {
      this.stopRingback();
      clearInterval(this.qualityTimer);
      clearTimeout(this.iceTimer);
      if (this.pc) this.pc.close();
      if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
      this.audio.srcObject = null;
    }
  }

  class Device extends Emitter {
    constructor(options) {
      super();
      if (!options || !options.icon) throw new Error("Offhook.device needs { icon: 'PUBLIC_ID' }");
      this.icon = options.icon;
      this.server = (options.server || location.origin).replace(/\/+$/, "");
      this.call = null;
    }

    // What the icon is now: { status, label, open, hours, timezone, next_open_at, … }.
    async info() {
      try {
        const response = await fetch(this.server + "/api/v1/icons/" + encodeURIComponent(this.icon));
        const body = await response.json().catch(() => ({}));
        if (response.status === 404) return { status: "unknown", error: body.error };
        if (!response.ok) return { status: "unavailable", error: body.error };
        return body;
      } catch (e) {
        return { status: "unavailable", error: e.message };
      }
    }

    // Starts a call through the icon; its events tell how it goes.
    connect(options) {
      this.call = new Call(this, options);
      return this.call;
    }
  }

  window.Offhook = Object.assign(window.Offhook || {}, {
    device: (options) => new Device(options),
    Device,
    Call,
    thresholds: THRESHOLDS,
  });
})();
