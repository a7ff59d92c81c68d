// offhook's small SIP-over-WebSocket user agent (RFC 3261 + RFC 7118) for one
// outgoing call from a browser: INVITE with a WebRTC offer, provisional and final
// responses, ACK, CANCEL before answer, BYE either way, in-dialog requests from the
// server answered. No registration: an icon call is authorised by its call token.
// Loaded by widget.js; exposes `OffhookSip` on window. No dependencies.
(function () {
  "use strict";

  function random(n) {
    const chars = "abcdefghijklmnopqrstuvwxyz0123456789";
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    return Array.from(bytes, (b) => chars[b % chars.length]).join("");
  }

  // Parses one SIP message (text) into {startLine, status, reason, method, headers, body}.
  function parse(text) {
    const split = text.indexOf("\r\n\r\n");
    const head = split < 0 ? text : text.slice(0, split);
    const body = split < 0 ? "" : text.slice(split + 4);
    const lines = head.split("\r\n");
    const startLine = lines.shift() || "";
    const headers = {};
    const compact = { v: "via", f: "from", t: "to", i: "call-id", m: "contact", l: "content-length", c: "content-type" };
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon < 0) continue;
      let name = line.slice(0, colon).trim().toLowerCase();
      name = compact[name] || name;
      (headers[name] = headers[name] || []).push(line.slice(colon + 1).trim());
    }
    const msg = { startLine, headers, body };
    const status = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(startLine);
    if (status) {
      msg.status = Number(status[1]);
      msg.reason = status[2];
    } else {
      msg.method = startLine.split(" ")[0];
    }
    msg.header = (name) => (headers[name.toLowerCase()] || [])[0] || "";
    msg.cseqMethod = () => (msg.header("cseq").split(/\s+/)[1] || "").toUpperCase();
    return msg;
  }

  // A call over one WebSocket. Events via callbacks: onState(state, detail), onAnswer(sdp), onEnd(reason, status, why).
  class Call {
    constructor(opts) {
      this.wsUrl = opts.wsUrl;
      this.target = opts.target; // sip:icon-public-id@domain
      this.domain = opts.domain;
      this.token = opts.token;
      this.extraHeaders = opts.extraHeaders || [];
      this.callId = random(20);
      this.fromTag = random(10);
      this.host = random(12) + ".invalid";
      this.cseq = 1;
      this.branch = "";
      this.state = "idle";
      this.onState = opts.onState || (() => {});
      this.onAnswer = opts.onAnswer || (() => {});
      // A provisional response with SDP (183 Session Progress): early media.
      this.onEarlyMedia = opts.onEarlyMedia || (() => {});
      this.earlySdp = null;
      this.onEnd = opts.onEnd || (() => {});
      this.routeSet = [];
      this.remoteTarget = "";
      this.toHeader = "<" + this.target + ">";
      this.localUri = "sip:visitor@" + this.host;
    }

    connect() {
      return new Promise((resolve, reject) => {
        const ws = new WebSocket(this.wsUrl, "sip");
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error("cannot reach the call server"));
        ws.onclose = () => {
          if (this.state !== "ended") this.end("connection lost");
        };
        ws.onmessage = (ev) => this.receive(typeof ev.data === "string" ? ev.data : "");
        this.ws = ws;
      });
    }

    send(text) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
    }

    via(branch) {
      return "Via: SIP/2.0/WSS " + this.host + ";branch=" + branch;
    }

    request(method, uri, cseq, branch, extra, body) {
      const lines = [
        method + " " + uri + " SIP/2.0",
        this.via(branch),
        "Max-Forwards: 70",
        "From: <" + this.localUri + ">;tag=" + this.fromTag,
        "To: " + this.toHeader,
        "Call-ID: " + this.callId,
        "CSeq: " + cseq + " " + method,
      ];
      for (const r of extra) lines.push(r);
      lines.push("Content-Length: " + new TextEncoder().encode(body || "").length);
      return lines.join("\r\n") + "\r\n\r\n" + (body || "");
    }

    invite(sdp) {
      this.branch = "z9hG4bK" + random(12);
      this.inviteCseq = this.cseq;
      const extra = [
        "Contact: <sip:visitor@" + this.host + ";transport=ws>",
        OffhookVocab.headers.token + ": " + this.token,
        "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO",
        "Content-Type: application/sdp",
        ...this.extraHeaders,
      ];
      this.state = "calling";
      this.onState("connecting");
      this.send(this.request("INVITE", this.target, this.inviteCseq, this.branch, extra, sdp));
    }

    receive(text) {
      const msg = parse(text);
      if (msg.status) this.response(msg);
      else if (msg.method) this.incoming(msg);
    }

    response(msg) {
      const method = msg.cseqMethod();
      if (method !== "INVITE") {
        if (method === "BYE" && this.state === "ending") this.end("ended");
        return;
      }
      if (msg.status < 200) {
        if (msg.status > 100 && msg.body && msg.body.trim() && this.earlySdp === null) {
          this.earlySdp = msg.body;
          this.onEarlyMedia(msg.body);
        }
        if (msg.status === 180 || msg.status === 183) this.onState("ringing");
        return;
      }
      if (msg.status < 300) {
        this.toHeader = msg.header("to");
        const contact = /<([^>]+)>/.exec(msg.header("contact"));
        this.remoteTarget = contact ? contact[1] : this.target;
        this.routeSet = (msg.headers["record-route"] || []).join(", ").split(/,\s*(?=<)/).filter(Boolean).reverse();
        this.ack();
        if (this.state === "cancelling") {
          this.bye();
          return;
        }
        this.state = "confirmed";
        // The answer already applied with the early media is not applied twice.
        if (msg.body && msg.body.trim() && msg.body !== this.earlySdp) this.onAnswer(msg.body);
        this.onState("in-call");
      } else {
        // ACK for a non-2xx final response: same branch, hop by hop.
        const to = "To: " + msg.header("to");
        const ack = [
          "ACK " + this.target + " SIP/2.0",
          this.via(this.branch),
          "Max-Forwards: 70",
          "From: <" + this.localUri + ">;tag=" + this.fromTag,
          to,
          "Call-ID: " + this.callId,
          "CSeq: " + this.inviteCseq + " ACK",
          "Content-Length: 0",
        ].join("\r\n");
        this.send(ack + "\r\n\r\n");
        this.end(this.state === "cancelling" ? "ended" : msg.status + " " + msg.reason, msg.status);
      }
    }

    routeHeaders() {
      return this.routeSet.length ? ["Route: " + this.routeSet.join(", ")] : [];
    }

    ack() {
      const branch = "z9hG4bK" + random(12);
      this.send(this.request("ACK", this.remoteTarget, this.inviteCseq, branch, this.routeHeaders(), ""));
    }

    // `cause`, when given, is a hang-up cause the gateway records (X-Offhook-Cause).
    bye(cause) {
      this.state = "ending";
      this.cseq += 1;
      const branch = "z9hG4bK" + random(12);
      const stated = cause ? [OffhookVocab.headers.cause + ": " + cause] : [];
      this.send(this.request("BYE", this.remoteTarget, this.cseq, branch, [...this.routeHeaders(), ...stated], ""));
      // Do not wait forever for the 200.
      setTimeout(() => this.end("ended"), 2000);
    }

    // Answers requests from the server: BYE (the far end hung up), OPTIONS, INFO.
    incoming(msg) {
      const lines = ["SIP/2.0 200 OK"];
      for (const v of msg.headers["via"] || []) lines.push("Via: " + v);
      lines.push("From: " + msg.header("from"), "To: " + msg.header("to"), "Call-ID: " + msg.header("call-id"));
      lines.push("CSeq: " + msg.header("cseq"), "Content-Length: 0");
      if (msg.method !== "ACK") this.send(lines.join("\r\n") + "\r\n\r\n");
      // A BYE the gateway ended (no audio path, media timeout, line fault) says why in its Reason.
      const why = /text="([^"]*)"/.exec(msg.header("reason"));
      if (msg.method === "BYE") this.end("the other side hung up", undefined, why ? why[1] : undefined);
    }

    hangup(cause) {
      if (this.state === "calling") {
        this.state = "cancelling";
        const cancel = [
          "CANCEL " + this.target + " SIP/2.0",
          this.via(this.branch),
          "Max-Forwards: 70",
          "From: <" + this.localUri + ">;tag=" + this.fromTag,
          "To: <" + this.target + ">",
          "Call-ID: " + this.callId,
          "CSeq: " + this.inviteCseq + " CANCEL",
          "Content-Length: 0",
        ].join("\r\n");
        this.send(cancel + "\r\n\r\n");
        setTimeout(() => this.end("ended"), 4000);
      } else if (this.state === "confirmed") {
        this.bye(cause);
      } else {
        this.end("ended");
      }
    }

    end(reason, status, why) {
      if (this.state === "ended") return;
      this.state = "ended";
      try {
        if (this.ws) this.ws.close();
      } catch (e) {
        /* already closed */
      }
      this.onEnd(reason, status, why);
    }
  }

  window.OffhookSip = { Call, parse };
})();
