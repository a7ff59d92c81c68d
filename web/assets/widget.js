// offhook's embeddable call icon. A site owner pastes
//   <script src="https://OFFHOOK/widget.js" data-icon="PUBLIC_ID" async></script>
// anywhere: in the body, the widget appears where the tag is; in <head> (or on a
// page that is only the tag) it waits for the page and floats at the bottom
// right; `data-container="#id"` puts it in that element, `data-launcher` floats
// it wherever the tag is. `data-lang="de"` picks its language (else the page's).
// Before any click it shows what the icon is now (closed with its hours and next
// opening, switched off, unknown, not allowed on this page); a click asks for
// the microphone and calls through `Offhook.device` (device.js). It shows the
// call's states (failure in red, with why; success in green), a timer, mute, a
// keypad and hang-up, a network quality line, moves the focus to hang-up when a
// call starts and back to the call button when it ends, and announces every
// change to screen readers.
(function () {
  "use strict";
  const I18n = window.OffhookI18n;
  const registry = (window.offhookWidgets = window.offhookWidgets || []);

  const CSS = `
    :host { all: initial; display: block; font: 16px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; }
    :host(.floating) { position: fixed; right: 16px; bottom: 16px; z-index: 2147483000; }
    @media (max-width: 480px) { :host(.floating) { left: 8px; right: 8px; bottom: 8px; } :host(.floating) .box { width: auto; } }
    .box { box-sizing: border-box; width: min(100%, 22rem); display: flex; flex-direction: column; gap: 8px; padding: 12px;
           border-radius: 12px; background: #ffffff; border: 1px solid #8c959f; box-shadow: 0 2px 8px rgba(31,35,40,.12); }
    button { font: inherit; min-height: 44px; min-width: 44px; border-radius: 8px; padding: 8px 14px; cursor: pointer;
             border: 2px solid transparent; }
    button:focus-visible { outline: 3px solid #0969da; outline-offset: 2px; }
    .call { background: #116329; color: #ffffff; display: flex; align-items: center; justify-content: center; gap: 8px;
            font-weight: 600; width: 100%; }
    .call[aria-disabled="true"] { background: #eaeef2; color: #424a53; border-color: #8c959f; cursor: not-allowed; }
    .hangup { background: #a40e26; color: #ffffff; font-weight: 600; }
    .secondary { background: #f6f8fa; color: #1f2328; border-color: #8c959f; }
    .secondary[aria-pressed="true"] { background: #ddf4ff; border-color: #0969da; }
    .row { display: flex; flex-wrap: wrap; gap: 8px; }
    .row .hangup { flex: 1; }
    .digits { font-family: monospace; font-size: 18px; letter-spacing: 2px; margin: 4px 0; }
    .keypad { display: grid; grid-template-columns: repeat(3, 1fr); gap: 6px; }
    .keypad button { background: #f6f8fa; color: #1f2328; border-color: #8c959f; font-size: 18px; }
    [hidden] { display: none !important; }
    .status { margin: 0; }
    .status:empty { display: none; }
    .notice { padding: 8px 10px; border-radius: 8px; border-left: 4px solid; }
    .notice.failure { background: #ffebe9; color: #82071e; border-color: #cf222e; }
    .notice.failure::before { content: "⚠ " / ""; }
    .notice.success { background: #dafbe1; color: #0f5323; border-color: #1a7f37; }
    .hours { margin: 0; font-size: 14px; color: #424a53; }
    .quality { margin: 0; font-size: 14px; color: #424a53; display: flex; gap: 6px; align-items: center; }
    .quality .dot { width: 10px; height: 10px; border-radius: 50%; background: #1a7f37; flex: none; }
    .quality.poor { color: #82071e; font-weight: 600; }
    .quality.poor .dot { background: #cf222e; }
    @media (prefers-reduced-motion: no-preference) { .box { transition: border-color .2s; } }
  `;

  const PHONE = `<svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor"
    d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2c.3-.3.7-.4 1-.2 1.1.4 2.3.6 3.6.6.6 0 1 .4 1 1V20c0 .6-.4 1-1 1A17 17 0 0 1 3 4c0-.6.4-1 1-1h3.5c.6 0 1 .4 1 1 0 1.3.2 2.5.6 3.6.1.3 0 .7-.2 1z"/></svg>`;

  // Icon states before a click that refuse it, and the words for them.
  const REFUSED = { closed: "closed", disabled: "disabled", "not-allowed": "origin-not-allowed", unknown: "unknown-icon", unavailable: "unavailable" };

  function clock(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  class Widget {
    constructor(host, script, base) {
      this.host = host;
      this.iconId = script.dataset.icon;
      // The site owner's choice of media profile (data-link-profile="narrow" or
      // "wide"), over the gateway's `link_profile`.
      this.linkProfile = script.dataset.linkProfile;
      this.lang = I18n.pick(script.dataset.lang, document.documentElement.lang, navigator.language);
      this.device = window.Offhook.device({ icon: this.iconId, server: base });
      this.call = null;
      this.state = "idle";
      this.history = [];
      this.info = null;
      host.className += " offhook-widget";
      host.dataset.icon = this.iconId;
      host.setAttribute("lang", this.lang);
      const root = host.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${CSS}</style>
        <div class="box" role="group">
          <button type="button" class="call" part="call">${PHONE}<span class="label"></span></button>
          <p class="status" role="status" aria-live="polite"></p>
          <p class="hours" hidden></p>
          <p class="quality" hidden aria-live="polite"><span class="dot" aria-hidden="true"></span><span class="quality-text"></span></p>
          <div class="controls row" hidden>
            <button type="button" class="mute secondary" aria-pressed="false"></button>
            <button type="button" class="dtmf secondary" aria-expanded="false"></button>
            <button type="button" class="hangup"></button>
          </div>
          <p class="digits" hidden aria-live="polite"></p>
          <div class="keypad" hidden></div>
        </div>`;
      const $ = (sel) => root.querySelector(sel);
      this.el = {
        box: $(".box"), call: $(".call"), label: $(".label"), hours: $(".hours"),
        status: $(".status"), quality: $(".quality"), qualityText: $(".quality-text"), controls: $(".controls"),
        mute: $(".mute"), dtmf: $(".dtmf"), hangup: $(".hangup"), keypad: $(".keypad"),
        digits: $(".digits"),
      };
      this.el.label.textContent = this.t("call");
      this.el.box.setAttribute("aria-label", this.t("call"));
      this.el.mute.textContent = this.t("mute");
      this.el.dtmf.textContent = this.t("keypad");
      this.el.hangup.textContent = this.t("hangup");
      for (const key of "123456789*0#") {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = key;
        b.setAttribute("aria-label", this.t("key", { key }));
        b.addEventListener("click", () => this.sendDtmf(key));
        this.el.keypad.appendChild(b);
      }
      this.el.call.addEventListener("click", () => this.start());
      this.el.hangup.addEventListener("click", () => this.call && this.call.hangup());
      this.el.mute.addEventListener("click", () => this.toggleMute());
      this.el.dtmf.addEventListener("click", () => this.toggleKeypad());
      this.el.box.addEventListener("keydown", (ev) => this.key(ev));
      this.refresh();
    }

    t(key, values) {
      return I18n.text(this.lang, key, values);
    }

    // Kept for scripts that reach the widget's peer connection.
    get pc() {
      return this.call && this.call.pc;
    }

    async refresh() {
      const info = await this.device.info();
      this.info = info;
      if (info.label) {
        this.el.label.textContent = info.label;
        this.el.box.setAttribute("aria-label", info.label);
      }
      if (this.call) return;
      this.showIconState();
    }

    // What the icon is before a click: ready, or why a click would be refused.
    showIconState() {
      const info = this.info || { status: "ready" };
      const refused = REFUSED[info.status];
      this.el.call.setAttribute("aria-disabled", String(Boolean(refused)));
      this.el.hours.hidden = true;
      if (!refused) return this.setState("idle");
      let words = this.t(refused);
      if (info.status === "closed" && info.next_open_at) words += " " + this.t("opensAt", { when: I18n.when(this.lang, info.next_open_at) });
      this.show(words, "failure");
      if (info.hours) {
        this.el.hours.textContent = this.t("hours", { zone: info.timezone, hours: I18n.weekly(this.lang, info.hours) });
        this.el.hours.hidden = false;
      }
      this.setState(info.status);
    }

    // The status line (announced): plain while a call goes on, a notice
    // (failure in red, success in green) when it tells how things stand.
    show(text, notice) {
      this.el.status.className = notice ? "status notice " + notice : "status";
      this.el.status.textContent = text;
    }

    setState(state) {
      this.state = state;
      this.history.push(state);
      this.host.dataset.state = state;
      const active = ["connecting", "ringing", "in-call"].includes(state);
      this.el.controls.hidden = !active;
      this.el.call.hidden = active;
      if (!active) {
        this.el.keypad.hidden = true;
        this.el.dtmf.setAttribute("aria-expanded", "false");
        this.el.quality.hidden = true;
        this.el.digits.hidden = true;
        this.el.digits.textContent = "";
      }
    }

    start() {
      if (this.call || this.el.call.getAttribute("aria-disabled") === "true") {
        // Say again why not, for whoever missed it.
        const words = this.el.status.textContent;
        this.el.status.textContent = "";
        setTimeout(() => (this.el.status.textContent = words), 50);
        return;
      }
      this.el.hours.hidden = true;
      const call = this.device.connect({ linkProfile: this.linkProfile });
      this.call = call;
      this.setState("connecting");
      this.show(this.t("connecting"));
      this.el.mute.textContent = this.t("mute");
      this.el.mute.setAttribute("aria-pressed", "false");
      this.el.hangup.focus();
      call.on("state", (state, detail) => this.callState(call, state, detail));
      call.on("quality", (q) => this.showQuality(q));
      call.on("dtmf", (digit) => this.showDigit(digit));
    }

    callState(call, state, detail) {
      if (call !== this.call) return;
      clearInterval(this.timer);
      if (state === "ringing" || state === "in-call") {
        const since = Date.now();
        const words = () => this.t(state === "ringing" ? "ringing" : "inCall", { time: clock(Date.now() - since) });
        this.show(words());
        // The timer ticks visibly; screen readers hear the state change only.
        this.timer = setInterval(() => {
          this.el.status.setAttribute("aria-live", "off");
          this.el.status.textContent = words();
        }, 1000);
        this.el.status.setAttribute("aria-live", "polite");
        this.setState(state);
        return;
      }
      if (state !== "ended" && state !== "failed") return this.setState(state);
      this.el.status.setAttribute("aria-live", "polite");
      const hadFocus = this.host.shadowRoot.activeElement !== null;
      this.call = null;
      if (state === "failed") {
        const error = call.error || { code: "failed" };
        const words = this.t(error.code, { seconds: error.retryAfter || "" });
        this.show(words === error.code ? error.message || this.t("failed") : words, "failure");
      } else {
        const why = call.why ? " (" + call.why + ")" : "";
        this.show("✓ " + this.t(detail === "remote" ? "remoteHangup" : "ended") + why, "success");
      }
      this.setState(state);
      this.el.call.setAttribute("aria-disabled", "false");
      if (hadFocus || document.activeElement === document.body) this.el.call.focus();
    }

    showQuality(q) {
      const poor = q.level === "poor";
      const figures = this.t("qualityFigures", {
        rtt: q.rttMs == null ? "–" : q.rttMs,
        jitter: q.jitterMs == null ? "–" : q.jitterMs,
        loss: q.lossPercent,
      });
      const text = this.t(poor ? "qualityPoor" : "qualityGood") + " (" + figures + ")";
      this.el.quality.className = "quality" + (poor ? " poor" : "");
      // Announced when it changes level, not on every sample.
      this.el.quality.setAttribute("aria-live", poor === this.wasPoor ? "off" : "polite");
      this.wasPoor = poor;
      this.el.qualityText.textContent = text;
      this.el.quality.hidden = false;
      this.host.dataset.quality = q.level;
    }

    // Each key as the browser plays it into the call (RFC 4733), the last 16 kept.
    showDigit(digit) {
      this.el.digits.textContent = (this.el.digits.textContent + digit).slice(-16);
      this.el.digits.hidden = false;
      this.host.dataset.digits = this.el.digits.textContent;
    }

    sendDtmf(key) {
      return Boolean(this.call && this.call.sendDigits(key));
    }

    toggleMute() {
      if (!this.call) return;
      const muted = this.call.mute();
      this.el.mute.textContent = this.t(muted ? "unmute" : "mute");
      this.el.mute.setAttribute("aria-pressed", String(muted));
    }

    toggleKeypad() {
      const open = this.el.keypad.hidden;
      this.el.keypad.hidden = !open;
      this.el.dtmf.setAttribute("aria-expanded", String(open));
      if (open) this.el.keypad.querySelector("button").focus();
    }

    // Keys typed during a call go into it; Escape closes the keypad.
    key(ev) {
      if (!this.call) return;
      if (ev.key === "Escape" && !this.el.keypad.hidden) {
        this.toggleKeypad();
        this.el.dtmf.focus();
      } else if (/^[0-9*#]$/.test(ev.key)) {
        this.sendDtmf(ev.key);
      }
    }
  }

  // Where a snippet's widget goes: its container, after the tag in the body, or
  // floating (tag in <head>, or asked for) once the body exists.
  function mount(script) {
    script.dataset.offhookMounted = "true";
    const base = new URL(script.src, location.href).origin;
    const place = () => {
      const host = document.createElement("div");
      const selector = script.dataset.container;
      const container = selector ? document.querySelector(selector) : null;
      if (selector && !container) console.warn("offhook: no element matches data-container=" + selector + "; floating instead");
      if (container) {
        container.appendChild(host);
      } else if (!selector && !("launcher" in script.dataset) && document.body && document.body.contains(script)) {
        script.insertAdjacentElement("afterend", host);
      } else {
        host.className = "floating";
        document.body.appendChild(host);
      }
      registry.push(new Widget(host, script, base));
    };
    const ready = document.body && (!script.dataset.container || document.readyState !== "loading");
    if (ready && (document.body.contains(script) || document.readyState !== "loading")) place();
    else document.addEventListener("DOMContentLoaded", place, { once: true });
  }

  const own = document.currentScript;
  const snippets = own && own.dataset.icon ? [own] : [];
  // Scripts whose currentScript is unknown (some loaders): every unmounted snippet of ours.
  if (!own) {
    for (const s of document.querySelectorAll("script[data-icon][src]")) {
      if (/\/widget\.js(\?|$)/.test(s.src) && !s.dataset.offhookMounted) snippets.push(s);
    }
  }
  for (const script of snippets) if (!script.dataset.offhookMounted) mount(script);
})();
