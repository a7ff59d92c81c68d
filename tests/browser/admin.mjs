// The admin UI in a real browser: headless Chromium opens /admin, signs in with
// an API token, sees the live board (lines, the active call, the chart), asks for
// a hang-up of the call and a reset of the line (listed as open requests), reads
// the line's diagnostics, creates an icon with the form (listed, embed snippet;
// an invalid one shows the API's reason and is not written), searches and pages
// the call records (tenant and icon names, billable seconds), deletes a tenant
// after a confirmation that names what goes with it (cancel first, then
// delete), makes a webhook (its secret shown once), and reads the audit log.
// axe-core scans every view. Saves screenshots; prints a JSON report.
// usage: node admin.mjs <base-url> <token> <screenshot-dir>
import { launch } from "./launch.mjs";
import { axeViolations } from "./browsers.mjs";

const [baseUrl, token, shots] = process.argv.slice(2);
const report = { error: null, axe: {} };
const browser = await launch();
const scan = async (page, name) => {
  report.axe[name] = await axeViolations(page);
  await page.screenshot({ path: `${shots}/admin-${name}.png`, fullPage: true });
};
const tab = async (page, name) => {
  await page.click(`#tabs button[data-tab="${name}"]`);
  await page.waitForFunction((n) => document.querySelector(`#tabs button[data-tab="${n}"]`).getAttribute("aria-selected") === "true", name);
};
const noticeText = (page) => page.locator("#notices .notice").first().textContent({ timeout: 10000 });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
  await page.goto(new URL("/admin", baseUrl).href);
  await scan(page, "signin");
  await page.fill("#token", token);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#app:not(.hidden) .board", { timeout: 15000 });
  report.who = await page.textContent("#who");
  report.boardLines = await page.locator(".board .line b").allTextContents();
  report.chartBars = await page.locator("svg.chart rect").count();

  // The active call (placed by the test) and its hang-up; the line's reset.
  const callRow = page.locator('table[aria-label="active calls"] tbody tr').first();
  await callRow.waitFor({ timeout: 15000 });
  report.activeCall = await callRow.textContent();
  await callRow.locator("button", { hasText: "Hang up" }).click();
  report.hangupNotice = await noticeText(page);
  await page.locator(".board .line button", { hasText: "Reset" }).first().click();
  await page.waitForFunction(() => document.querySelectorAll("#notices .notice").length >= 2);
  report.resetNotice = await noticeText(page);
  await page.waitForFunction(() => document.querySelectorAll('table[aria-label="open requests"] tbody tr').length >= 2, null, { timeout: 10000 });
  report.openRequests = await page.locator('table[aria-label="open requests"] tbody tr').allTextContents();
  await page.locator(".board .line button", { hasText: "Diagnose" }).first().click();
  report.diagnostics = await page.locator("#diagnostics").textContent({ timeout: 10000 });
  await scan(page, "board");

  // Icons: create, list, embed, an invalid one.
  await tab(page, "icons");
  const form = page.locator('form[aria-label="Icons form"]');
  await form.waitFor();
  await form.locator("#field-tenant").fill("demo");
  await form.locator("#field-public_id").fill("browser-made");
  await form.locator("#field-number").fill("+4930555123");
  await form.locator("#field-label").fill("Made in the browser");
  await form.locator("#field-allowed_origins").fill("https://shop.example");
  await form.locator("#field-ring_timeout_s").fill("25");
  await form.locator("button[type=submit]").click();
  const row = page.locator("table tbody tr", { hasText: "browser-made" });
  await row.waitFor({ timeout: 10000 });
  report.listedRow = await row.textContent();
  report.createdNotice = await noticeText(page);
  await row.locator("button", { hasText: "Embed" }).click();
  report.embed = await page.locator("#embed pre").textContent({ timeout: 10000 });
  await form.locator("#field-tenant").fill("demo");
  await form.locator("#field-number").fill("not a number");
  await form.locator("#field-label").fill("Broken");
  await form.locator("button[type=submit]").click();
  await page.waitForFunction(() => document.querySelector("#view .error")?.textContent.length > 0, null, { timeout: 10000 });
  report.invalidError = await page.locator("#view .error").textContent();
  report.brokenListed = await page.locator("table tbody tr", { hasText: "Broken" }).count();
  await scan(page, "icons");

  // Call records: names, billable time, search, pages.
  await tab(page, "calls");
  await page.locator('table[aria-label="call records"]').waitFor({ timeout: 10000 });
  report.recordsHeader = await page.locator('table[aria-label="call records"] thead').textContent();
  report.recordsPager = await page.locator(".pager span").textContent();
  await page.fill("#field-q", "demo-busy");
  await page.click('form[aria-label="filter"] button[type=submit]');
  await page.waitForFunction(() => /of \d+|none/.test(document.querySelector(".pager span").textContent) &&
    [...document.querySelectorAll('table[aria-label="call records"] tbody tr')].every((r) => r.textContent.includes("demo-busy")), null, { timeout: 10000 });
  report.searchedRows = await page.locator('table[aria-label="call records"] tbody tr').allTextContents();
  await page.fill("#field-q", "");
  await page.click('form[aria-label="filter"] button[type=submit]');
  await page.waitForFunction(() => document.querySelector(".pager span").textContent.startsWith("1–50"), null, { timeout: 10000 });
  await page.click('.pager button:has-text("Next page")');
  await page.waitForFunction(() => document.querySelector(".pager span").textContent.startsWith("51–"), null, { timeout: 10000 });
  report.secondPage = await page.locator(".pager span").textContent();
  await scan(page, "calls");

  // A tenant's delete names what goes with it; cancel, then delete.
  await tab(page, "tenants");
  const doomed = page.locator("table tbody tr", { hasText: "doomed" });
  await doomed.waitFor({ timeout: 10000 });
  await doomed.locator("button", { hasText: "Delete" }).click();
  await page.locator("dialog#confirm[open]").waitFor({ timeout: 10000 });
  report.confirmText = await page.locator("dialog#confirm").textContent();
  report.confirmFocus = await page.evaluate(() => document.activeElement.textContent);
  await scan(page, "delete-confirmation");
  await page.keyboard.press("Escape");
  await page.locator("dialog#confirm[open]").waitFor({ state: "detached", timeout: 5000 }).catch(() => {});
  report.keptAfterCancel = await page.locator("table tbody tr", { hasText: "doomed" }).count();
  await doomed.locator("button", { hasText: "Delete" }).click();
  await page.locator("dialog#confirm[open]").waitFor();
  await page.click("dialog#confirm button.danger");
  await page.waitForFunction(() => ![...document.querySelectorAll("table tbody tr")].some((r) => r.textContent.includes("doomed")), null, { timeout: 10000 });
  report.deletedNotice = await noticeText(page);

  // A webhook: its secret once.
  await tab(page, "webhooks");
  const hooks = page.locator('form[aria-label="Webhooks form"]');
  await hooks.waitFor();
  await hooks.locator("#field-tenant").fill("demo");
  await hooks.locator("#field-url").fill("https://billing.example/offhook");
  await hooks.locator("button[type=submit]").click();
  await page.locator("#notices code.secret").waitFor({ timeout: 10000 });
  report.secret = await page.locator("#notices code.secret").textContent();
  report.webhookRow = await page.locator("table tbody tr", { hasText: "billing.example" }).textContent();
  await scan(page, "webhooks");

  await tab(page, "requests");
  await page.locator('table[aria-label="requests"]').waitFor();
  report.requests = await page.locator('table[aria-label="requests"] tbody tr').allTextContents();
  await scan(page, "requests");

  await tab(page, "audit");
  await page.locator('table[aria-label="audit log"]').waitFor();
  report.audit = await page.locator('table[aria-label="audit log"] tbody tr').allTextContents();
  await scan(page, "audit");

  await tab(page, "lines");
  await page.locator('table[aria-label="Lines"]').waitFor();
  await scan(page, "lines");
} catch (err) {
  report.error = String((err && err.stack) || err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
