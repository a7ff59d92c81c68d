// offhook's embeddable call icon. A site owner pastes
//   <script src="https://OFFHOOK/widget.js" data-icon="PUBLIC_ID" async></script>
// and visitors get a call button: clicking it asks for the microphone, obtains a
// one-call token from the click API, and calls over SIP/WebSocket (sipws.js, served
// in front of this file) with WebRTC audio. It shows the call's states, a timer,
// mute, a DTMF keypad and hang-up, and plays ringback while the line rings.
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script) return;
  const iconId = script.dataset.icon;
  const base = new URL(script.src, location.href).origin;
  const registry = (window.offhookWidgets = window.offhookWidgets || []);

  const MESSAGES = {
    403: "Calls are not allowed from this page.",
    404: "The number cannot be reached.",
    408: "No answer.",
    480: "No answer.",
    486: "The line is busy.",
    487: "Call ended.",
    488: "Your browser's audio is not supported.",
    503: "All lines are busy. Please try again later.",
  };

  const host = document.createElement("div");
  host.className = "offhook-widget";
  host.dataset.icon = iconId;
  script.insertAdjacentElement("afterend", host);
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `
    <style>
      :host { all: initial; font: 14px/1.4 system-ui, sans-serif; }
      .box { display: inline-flex; flex-direction: column; gap: 6px; padding: 10px; border-radius: 12px;
             background: #f4f7f5; border: 1px solid #cfd8d3; min-width: 200px; }
      button { font: inherit; border: 0; border-radius: 8px; padding: 8px 12px; cursor: pointer; }
      .call { background: #1f8a4c; color: #fff; display: flex; align-items: center; gap: 8px; }
      .hangup { background: #c0392b; color: #fff; }
      .row { display: flex; gap: 6px; }
      .keypad { display: grid; grid-template-columns: repeat(3, 1fr); gap: 4px; }
      .keypad button { padding: 6px; background: #e3e9e5; }
      [hidden] { display: none !important; }
      .status { color: #333; min-height: 1.4em; }
    </style>
    <div class="box">
      <button class="call" part="call" title="Call">
        <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor"
          d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1z"/></svg>
        <span class="label">Call</span>
      </button>
      <div class="status" role="status" aria-live="polite"></div>
      <div class="controls row" hidden>
        <button class="mute">Mute</button>
        <button class="dtmf">Keypad</button>
        <button class="hangup">Hang up</button>
      </div>
      <div class="keypad" hidden></div>
    </div>`;
  const $ = (sel) => root.querySelector(sel);
  const callButton = $(".call");
  const statusText = $(".status");
  const controls = $(".controls");
  const keypad = $(".keypad");
  for (const key of "123456789*0#") {
    const b = document.createElement("button");
    b.textContent = key;
    b.addEventListener("click", () => widget.sendDtmf(key));
    keypad.appendChild(b);
  }

  const widget = {
    iconId,
    state: "idle",
    history: [],
    call: null,
    pc: null,
    stream: null,
    audio: new Audio(),
    ringback: null,
    timer: null,
    setState(state, detail) {
      this.state = state;
      this.history.push(state);
      const started = this.startedAt;
      const text = {
        idle: "",
        connecting: "Connecting…",
        ringing: "Ringing…",
        "in-call": "In call 0:00",
        ended: "Call ended.",
        failed: detail || "The call failed.",
        busy: MESSAGES[486],
        "no-answer": MESSAGES[480],
      }[state];
      statusText.textContent = text === undefined ? state : text;
      host.dataset.state = state;
      if (state === "ringing") this.startRingback();
      else this.stopRingback();
      if (state === "in-call" && !started) {
        this.startedAt = Date.now();
        this.timer = setInterval(() => {
          const s = Math.floor((Date.now() - this.startedAt) / 1000);
          statusText.textContent = "In call " + Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
        }, 1000);
      }
      const active = ["connecting", "ringing", "in-call"].includes(state);
      controls.hidden = !active;
      callButton.hidden = active;
      if (!active) keypad.hidden = true;
    },
    // Ringback: 425 Hz, 1 s on, 4 s off (ITU-T E.180), from WebAudio.
    startRingback() {
      if (this.ringback) return;
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
    },
    stopRingback() {
      if (!this.ringback) return;
      clearInterval(this.ringback.interval);
      this.ringback.ctx.close();
      this.ringback = null;
    },
    async start() {
      this.startedAt = 0;
      this.setState("connecting");
      let grant;
      try {
        const res = await fetch(base + "/api/v1/icons/" + encodeURIComponent(iconId) + "/calls", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: "{}",
        });
        grant = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(grant.error || "The call could not be started.");
      } catch (e) {
        return this.fail(e.message);
      }
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (e) {
        return this.fail("Microphone access is needed to call.");
      }
      const pc = new RTCPeerConnection({ iceServers: [] });
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
      const call = new window.OffhookSip.Call({
        wsUrl: grant.ws_url,
        target: grant.target,
        domain: grant.domain,
        token: grant.token,
        onState: (s) => this.setState(s),
        onAnswer: (sdp) => pc.setRemoteDescription({ type: "answer", sdp }).catch((e) => this.fail(e.message)),
        onEnd: (reason, status) => this.finish(reason, status),
      });
      this.call = call;
      try {
        await call.connect();
      } catch (e) {
        return this.fail(e.message);
      }
      call.invite(pc.localDescription.sdp);
    },
    sendDtmf(key) {
      const sender = this.pc && this.pc.getSenders().find((s) => s.dtmf);
      if (sender && sender.dtmf.canInsertDTMF) sender.dtmf.insertDTMF(key, 120, 70);
    },
    toggleMute() {
      if (!this.stream) return;
      const track = this.stream.getAudioTracks()[0];
      track.enabled = !track.enabled;
      $(".mute").textContent = track.enabled ? "Mute" : "Unmute";
    },
    hangup() {
      if (this.call) this.call.hangup();
      else this.finish("ended");
    },
    cleanup() {
      clearInterval(this.timer);
      this.timer = null;
      if (this.pc) this.pc.close();
      if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
      this.pc = null;
      this.stream = null;
      this.call = null;
    },
    finish(reason, status) {
      this.cleanup();
      if (status === 486) this.setState("busy");
      else if (status === 480 || status === 408) this.setState("no-answer");
      else if (status && status >= 300) this.setState("failed", MESSAGES[status] || reason);
      else this.setState("ended");
    },
    fail(message) {
      this.cleanup();
      this.setState("failed", message);
    },
  };
  callButton.addEventListener("click", () => widget.start());
  $(".hangup").addEventListener("click", () => widget.hangup());
  $(".mute").addEventListener("click", () => widget.toggleMute());
  $(".dtmf").addEventListener("click", () => (keypad.hidden = !keypad.hidden));
  fetch(base + "/api/v1/icons/" + encodeURIComponent(iconId))
    .then((r) => (r.ok ? r.json() : null))
    .then((icon) => {
      if (icon && icon.label) $(".label").textContent = icon.label;
    })
    .catch(() => {});
  registry.push(widget);
})();
