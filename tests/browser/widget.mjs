// The widget as site owners embed it, in a real browser (Chromium or Firefox ESR,
// puppeteer-core): pages on another origin than offhook (a small server here,
// reached as 127.0.0.1 — an allowed origin — and as localhost — one that is not)
// load /widget.js from offhook: the snippet in <head>, a page that is only the
// snippet, an explicit container, the snippet in the body; the icon's state
// before any click (closed with its hours and next opening, switched off,
// unknown, not allowed on this page), the refusal reaching the JS API across
// origins, the page's language or data-lang choosing the words, the keyboard
// flow (Tab to the call button, Enter, focus on hang-up, back on the call
// button when it ends), a call to the echo with its quality line (Chromium), a
// phone viewport (375x667: nothing wider, every button at least 44 px), and
// axe-core in every state reached. Icons are set up through the admin API.
// Screenshots go to <dir>/widget-<browser>-<state>.png. Prints a JSON report.
// usage: node widget.mjs <offhook-base-url> <operator-token> <chromium|firefox> <screenshot-dir> [tone.wav]
import http from "node:http";
import { openBrowser, axeViolations } from "./browsers.mjs";

const [base, token, browserName, shots, wav] = process.argv.slice(2);
const origin = new URL(base).origin;
const report = { browser: browserName, error: null, checks: {}, axe: {}, screenshots: [] };
const check = (name, ok, detail) => (report.checks[name] = { ok: Boolean(ok), detail });

async function admin(method, path, body) {
  const response = await fetch(origin + "/api/v1/admin" + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(data)}`);
  return data;
}

// The site owner's pages.
const page = (title, lang, head, body) =>
  `<!doctype html><html lang="${lang}"><head><meta charset="utf-8">` +
  `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>${head}</head>` +
  `<body><main><h1>${title}</h1><p><a href="#top">Shop home</a></p>${body}</main></body></html>`;
const snippet = (icon, attrs = "") => `<script src="${origin}/widget.js" data-icon="${icon}" ${attrs} async></script>`;
const PAGES = {
  "/head": (q) => page("Snippet in head", q.get("lang") || "en", snippet(q.get("icon"), q.get("attrs") || ""), "<p>Our shop.</p>"),
  "/only": (q) => snippet(q.get("icon")),
  "/container": (q) =>
    page("Container", "en", snippet(q.get("icon"), 'data-container="#call-here"'), '<section id="call-here" aria-label="Call us"></section>'),
  "/body": (q) => page("Snippet in body", q.get("lang") || "en", "", `<p>Call us:</p>${snippet(q.get("icon"), q.get("attrs") || "")}`),
  "/api": () =>
    page("Own button", "en", `<script src="${origin}/widget.js"></script>`, '<button id="mine" type="button">Call</button>'),
};
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const render = PAGES[url.pathname];
  res.writeHead(render ? 200 : 404, { "Content-Type": "text/html; charset=utf-8" });
  res.end(render ? render(url.searchParams) : "not found");
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;
const allowed = `http://127.0.0.1:${port}`;
const elsewhere = `http://localhost:${port}`;

const findWidget = (icon) => `(window.offhookWidgets || []).find((w) => w.iconId === ${JSON.stringify(icon)})`;
async function widgetState(p, icon) {
  return p.evaluate((find) => {
    const w = eval(find);
    if (!w) return null;
    const root = w.host.shadowRoot;
    const text = (sel) => root.querySelector(sel).textContent;
    const shown = (sel) => !root.querySelector(sel).hidden;
    return {
      state: w.state,
      info: Boolean(w.info),
      notice: text(".status"),
      noticeKind: root.querySelector(".status").className,
      hours: shown(".hours") ? text(".hours") : "",
      status: text(".status"),
      quality: shown(".quality") ? text(".quality") : "",
      floating: w.host.classList.contains("floating"),
      parent: w.host.parentElement && (w.host.parentElement.id || w.host.parentElement.tagName),
      lang: w.host.getAttribute("lang"),
      hangup: text(".hangup"),
      label: text(".label"),
    };
  }, findWidget(icon));
}
async function until(p, icon, predicate, what, ms = 30000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    last = await widgetState(p, icon).catch(() => null);
    if (last && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timeout: ${what}; last ${JSON.stringify(last)}`);
}
const deepActive = (p) =>
  p.evaluate(() => {
    let a = document.activeElement;
    while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
    return a ? a.className || a.tagName : null;
  });
async function shot(p, name) {
  const path = `${shots}/widget-${browserName}-${name}.png`;
  await p.screenshot({ path });
  report.screenshots.push(path);
}
async function scan(p, name) {
  report.axe[name] = await axeViolations(p);
}
// Tab from the top until the widget's call button has the focus; how many presses.
async function tabToCall(p) {
  for (let n = 1; n <= 12; n++) {
    await p.keyboard.press("Tab");
    if ((await deepActive(p)) === "call") return n;
  }
  return null;
}

const browser = await openBrowser(browserName, wav);
try {
  // Icons: the demo's two get the test page's origin; a closed and a switched-off one.
  for (const icon of ["demo-echo", "demo-busy"]) {
    const current = await admin("GET", `/icons/${icon}`);
    await admin("PATCH", `/icons/${icon}`, { allowed_origins: [...current.allowed_origins, allowed] });
  }
  const today = new Date().getUTCDay(); // 0 = Sunday
  const otherDay = today === 1 ? "tue" : "mon";
  // Made by the first run on this server, changed by the next.
  const icon = async (id, fields) => {
    const existing = await admin("GET", `/icons/${id}`).catch(() => null);
    if (existing) await admin("PATCH", `/icons/${id}`, fields);
    else await admin("POST", "/icons", { tenant: "demo", public_id: id, number: "5550100", ...fields });
  };
  await icon("shop-closed", {
    label: "Call the shop", allowed_origins: [allowed], opening_hours: `${otherDay} 09:00-17:00`, timezone: "Europe/Berlin",
  });
  await icon("shop-off", { label: "Call the office", allowed_origins: [allowed], enabled: false });

  const p = await browser.newPage();
  await p.setViewport({ width: 1024, height: 768 });
  p.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));

  // A page that is only the snippet: it waits for the body and floats.
  await p.goto(`${allowed}/only?icon=demo-echo`);
  let w = await until(p, "demo-echo", (s) => s.info, "widget on a page of only the snippet");
  check("only-snippet", w.state === "idle" && w.floating && w.label === "Call the echo", w);

  // The snippet in <head> of a German page: floating, German words, ready.
  await p.goto(`${allowed}/head?icon=demo-echo&lang=de`);
  w = await until(p, "demo-echo", (s) => s.info, "widget from <head>");
  check("head-snippet", w.state === "idle" && w.floating && w.parent === "BODY", w);
  check("german-from-page-lang", w.lang === "de" && w.hangup === "Auflegen", w);
  await scan(p, "ready");
  await shot(p, "head");

  // An explicit container.
  await p.goto(`${allowed}/container?icon=demo-echo`);
  w = await until(p, "demo-echo", (s) => s.info, "widget in its container");
  check("container", w.parent === "call-here" && !w.floating, w);

  // Refusals, shown before any click.
  const refusals = [
    ["closed", "shop-closed", allowed, (s) => s.state === "closed" && s.notice.includes("Closed now") &&
      s.notice.includes("Opens") && s.hours.includes("Europe/Berlin") && s.hours.includes("09:00–17:00")],
    ["disabled", "shop-off", allowed, (s) => s.state === "disabled" && s.notice.includes("switched off")],
    ["unknown", "no-such-icon", allowed, (s) => s.state === "unknown" && s.notice.includes("not set up")],
    ["not-allowed", "demo-echo", elsewhere, (s) => s.state === "not-allowed" && s.notice.includes("not allowed from this page")],
  ];
  for (const [name, icon, site, ok] of refusals) {
    await p.goto(`${site}/body?icon=${icon}`);
    w = await until(p, icon, (s) => s.info, `${name} shown`);
    check(`refused-${name}`, ok(w) && w.noticeKind.includes("failure"), w);
    await scan(p, name);
    await shot(p, name);
  }
  // data-lang beats the page's language.
  await p.goto(`${allowed}/body?icon=shop-closed&lang=de&attrs=${encodeURIComponent('data-lang="fr"')}`);
  w = await until(p, "shop-closed", (s) => s.info, "French closed icon");
  check("french-from-data-lang", w.lang === "fr" && w.notice.includes("Fermé") && w.notice.includes("Ouvre"), w);

  // The JS API across origins: the refusal's reason is readable (CORS), and info works.
  for (const [name, site, want] of [["api-refused", elsewhere, "origin-not-allowed"], ["api-ready", allowed, null]]) {
    await p.goto(`${site}/api`);
    const result = await p.evaluate(async (w) => {
      for (let i = 0; i < 100 && !window.Offhook; i++) await new Promise((r) => setTimeout(r, 50));
      const device = window.Offhook.device({ icon: "demo-echo", server: w.origin });
      const info = await device.info();
      if (!w.want) return { info: info.status };
      const call = device.connect();
      return new Promise((resolve) => {
        const states = [];
        call.on("state", (s) => states.push(s));
        call.on("error", (e) => setTimeout(() => resolve({ info: info.status, error: e, states }), 50));
        setTimeout(() => resolve({ info: info.status, states, timeout: true }), 10000);
      });
    }, { origin, want });
    check(name, want ? result.error && result.error.code === want && /not allowed/.test(result.error.message) &&
      result.states.includes("failed") && result.info === "not-allowed" : result.info === "ready", result);
  }

  // The keyboard flow on a phone: Tab to the call button, Enter, the focus on
  // hang-up while it rings, a busy line, the focus back on the call button.
  await p.setViewport({ width: 375, height: 667 });
  await p.goto(`${allowed}/body?icon=demo-busy`);
  await until(p, "demo-busy", (s) => s.info, "busy icon ready");
  const presses = await tabToCall(p);
  check("tab-reaches-call", presses !== null, { presses });
  await p.keyboard.press("Enter");
  w = await until(p, "demo-busy", (s) => s.state === "connecting" || s.state === "ringing", "call started");
  check("focus-to-hangup", (await deepActive(p)) === "hangup", { active: await deepActive(p) });
  const sizes = await p.evaluate((find) => {
    const root = eval(find).host.shadowRoot;
    const box = root.querySelector(".box").getBoundingClientRect();
    const buttons = [...root.querySelectorAll("button")].filter((b) => b.offsetParent !== null);
    return {
      boxRight: box.right,
      pageWidth: document.documentElement.scrollWidth,
      buttons: buttons.map((b) => { const r = b.getBoundingClientRect(); return [b.className, Math.round(r.width), Math.round(r.height)]; }),
    };
  }, findWidget("demo-busy"));
  check("phone-layout", sizes.boxRight <= 375 && sizes.pageWidth <= 375 && sizes.buttons.length >= 3 &&
    sizes.buttons.every(([, wd, ht]) => wd >= 44 && ht >= 44), sizes);
  await scan(p, "calling");
  await shot(p, "phone-calling");
  w = await until(p, "demo-busy", (s) => s.state === "failed", "busy line", 45000);
  check("busy-shown-as-failure", w.noticeKind.includes("failure") && w.notice.includes("busy"), w);
  check("focus-back-to-call", (await deepActive(p)) === "call", { active: await deepActive(p) });
  await scan(p, "failed");
  await shot(p, "phone-busy");

  // The floating widget on a phone.
  await p.goto(`${allowed}/head?icon=demo-echo`);
  await until(p, "demo-echo", (s) => s.info, "floating widget on a phone");
  const floating = await p.evaluate((find) => {
    const r = eval(find).host.shadowRoot.querySelector(".box").getBoundingClientRect();
    return { left: r.left, right: r.right, bottom: r.bottom, pageWidth: document.documentElement.scrollWidth };
  }, findWidget("demo-echo"));
  check("phone-floating", floating.left >= 0 && floating.right <= 375 && floating.bottom <= 667 && floating.pageWidth <= 375, floating);
  await shot(p, "phone-floating");

  // A whole call by keyboard, with its quality line (Chromium: its fake microphone
  // and loopback candidates carry media here).
  if (browserName === "chromium") {
    await p.setViewport({ width: 1024, height: 768 });
    await p.goto(`${allowed}/body?icon=demo-echo`);
    await until(p, "demo-echo", (s) => s.info, "echo icon ready");
    await tabToCall(p);
    await p.keyboard.press("Enter");
    w = await until(p, "demo-echo", (s) => s.state === "in-call" && s.quality !== "", "in call with a quality line", 45000);
    check("in-call-quality", w.quality.includes("Network: good") && /round trip \d+ ms/.test(w.quality), w);
    check("focus-on-hangup-in-call", (await deepActive(p)) === "hangup", { active: await deepActive(p) });
    await scan(p, "in-call");
    await shot(p, "in-call");
    await p.keyboard.press("Enter");
    w = await until(p, "demo-echo", (s) => s.state === "ended", "hung up");
    check("ended-shown-as-success", w.noticeKind.includes("success") && w.notice.includes("Call ended"), w);
    check("focus-back-after-call", (await deepActive(p)) === "call", { active: await deepActive(p) });
    await scan(p, "ended");
    await shot(p, "ended");
  }
} catch (e) {
  report.error = String((e && e.stack) || e);
} finally {
  await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(report.error ? 1 : 0);
