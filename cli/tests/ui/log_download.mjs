// A security officer finds a logged message by its query id in the web UI
// (Japanese) and downloads its containers, in headless Chromium.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER, MUSUBI_UI_PASSWORD,
// MUSUBI_UI_QUERY_ID, MUSUBI_UI_SHOTS; prints the downloaded file's path.
import { readFileSync } from "node:fs";
import { expect, login, shots, withPage } from "./common.mjs";

const queryId = process.env.MUSUBI_UI_QUERY_ID;

await withPage("ja-JP", async (page) => {
  await login(page, "ja", "section.card");
  // The dashboard counts the exchange this test made (and the demo's own).
  const lastHour = await page.locator("#last-hour").textContent();
  expect(/交換: [1-9]/.test(lastHour), `exchanges in the last hour: ${lastHour}`);
  await page.getByRole("link", { name: "メッセージログ" }).click();
  await page.waitForSelector("#log-search");
  await page.getByLabel("クエリ ID").fill(queryId);
  await page.getByRole("button", { name: "検索" }).click();
  await page.waitForSelector("#log-table");
  const rows = await page.locator("#log-table tbody tr").count();
  expect(rows === 2, `the request and the response, got ${rows}`);
  await page.screenshot({ path: `${shots}/message-log-ja.png`, fullPage: true });
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "コンテナをダウンロード (ZIP)" }).first().click(),
  ]);
  // Kept beside the screenshots: the browser's own copy goes when it closes.
  const path = `${shots}/${queryId}.zip`;
  await download.saveAs(path);
  const bytes = readFileSync(path);
  expect(bytes[0] === 0x50 && bytes[1] === 0x4b, "a ZIP");
  console.log(`ok: downloaded ${path}`);
});
