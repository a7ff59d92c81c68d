// The admin UI in a real browser: headless Chromium opens /admin, signs in with
// an API token, sees the live board, opens Icons, creates an icon with the form,
// sees it listed, shows its embed snippet, and tries an invalid one (the API's
// reason is shown, nothing listed). Saves a screenshot; prints a JSON report.
// usage: node admin.mjs <base-url> <token> <screenshot.png>
import { launch } from "./launch.mjs";

const [baseUrl, token, screenshot] = process.argv.slice(2);
const report = { error: null };
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
  await page.goto(new URL("/admin", baseUrl).href);
  await page.fill("#token", token);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#app:not(.hidden) .board", { timeout: 15000 });
  report.who = await page.textContent("#who");
  report.boardLines = await page.locator(".board .line b").allTextContents();
  report.chartBars = await page.locator("svg.chart rect").count();

  await page.click('#tabs button[data-tab="icons"]');
  const form = page.locator('form[aria-label="Icons form"]');
  await form.waitFor();
  await form.locator("#field-tenant").fill("demo");
  await form.locator("#field-public_id").fill("browser-made");
  await form.locator("#field-number").fill("+4930555123");
  await form.locator("#field-label").fill("Made in the browser");
  await form.locator("#field-allowed_origins").fill("https://shop.example");
  await form.locator("button[type=submit]").click();
  const row = page.locator("table tbody tr", { hasText: "browser-made" });
  await row.waitFor({ timeout: 10000 });
  report.listedRow = await row.textContent();
  await row.locator("button", { hasText: "Embed" }).click();
  report.embed = await page.locator("#embed pre").textContent({ timeout: 10000 });

  await form.locator("#field-tenant").fill("demo");
  await form.locator("#field-number").fill("not a number");
  await form.locator("#field-label").fill("Broken");
  await form.locator("button[type=submit]").click();
  const error = page.locator("main .error");
  await page.waitForFunction(() => document.querySelector("main .error")?.textContent.length > 0, null, { timeout: 10000 });
  report.invalidError = await error.textContent();
  report.brokenListed = await page.locator("table tbody tr", { hasText: "Broken" }).count();
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (err) {
  report.error = String(err && err.stack || err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
