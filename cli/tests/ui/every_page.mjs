// Every page of one server's web UI, in Japanese and in English, in headless
// Chromium: each renders without an error, every text it shows exists in
// that language (the shell notes keys a language lacks), every field has a
// label, no script or request fails, and a screenshot of each is kept.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER,
// MUSUBI_UI_PASSWORD, MUSUBI_UI_SHOTS and MUSUBI_UI_NAME (the screenshots' prefix).
import { expect, login, shots, url, withPage } from "./common.mjs";

const name = process.env.MUSUBI_UI_NAME;

await withPage("ja-JP", async (page) => {
  const failures = [];
  page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  await login(page, "ja", "#nav a");
  // Logged in (before, the session check answers 401 by design): no request may fail.
  page.on("response", (r) => { if (r.status() >= 400) failures.push(`${r.request().method()} ${r.url()}: ${r.status()}`); });
  const seen = [];
  for (const lang of ["ja", "en"]) {
    await page.selectOption("#lang", lang);
    await page.waitForFunction((l) => (document.documentElement.dataset.ready || "").startsWith(`${l} `), lang);
    const links = await page.locator("#nav a").evaluateAll((as) => as.map((a) => [a.getAttribute("href"), a.textContent]));
    expect(links.length >= 2, `the pages of ${name}: ${links}`);
    for (const [href, title] of links) {
      await page.goto(`${url}/${href}`);
      await page.waitForFunction(([l, h]) => document.documentElement.dataset.ready === `${l} ${h.slice(1)}`, [lang, href]);
      expect((await page.title()) === `${title} · Musubi`, `${href} (${lang}) titled ${title}`);
      const broken = await page.locator("#main > .notice[role=alert]").count();
      expect(broken === 0, `${href} (${lang}) rendered without an error: ${await page.locator("#main").textContent()}`);
      // Every field has a label; nothing is taken out of the keyboard's tab order.
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll("input, select, textarea")]
        .filter((e) => e.type !== "hidden" && !(e.labels && e.labels.length) && !e.getAttribute("aria-label")).map((e) => e.outerHTML));
      expect(unlabelled.length === 0, `${href} (${lang}): fields without a label: ${unlabelled.join(" ")}`);
      const untabbable = await page.locator("#main [tabindex='-1'], #main [onclick]:not(button):not(a)").count();
      expect(untabbable === 0, `${href} (${lang}): controls outside the tab order`);
      const missing = await page.evaluate(() => document.documentElement.dataset.missing);
      expect(missing === "", `${href} (${lang}) lacks texts: ${missing}`);
      const file = `${name}-${href.replace(/[^a-z]/g, "") || "home"}-${lang}.png`;
      await page.screenshot({ path: `${shots}/${file}`, fullPage: true });
      seen.push(`${href} ${lang}`);
    }
  }
  expect(failures.length === 0, `no failed requests or scripts: ${failures.join("; ")}`);
  console.log(`ok: ${name}: ${seen.length} pages in two languages`);
});
