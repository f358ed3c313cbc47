// A security officer finds a logged message by its query id in the web UI
// (Japanese) and downloads its containers, in headless Chromium.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER, MUSUBI_UI_PASSWORD,
// MUSUBI_UI_QUERY_ID, MUSUBI_UI_SHOTS; prints the downloaded file's path.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const url = process.env.MUSUBI_UI_URL;
const shots = process.env.MUSUBI_UI_SHOTS;
const queryId = process.env.MUSUBI_UI_QUERY_ID;

function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.MUSUBI_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "ja-JP", acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector("#login");
  await page.getByLabel("ユーザー名").fill(process.env.MUSUBI_UI_USER);
  await page.getByLabel("パスワード").fill(process.env.MUSUBI_UI_PASSWORD);
  await page.getByRole("button", { name: "ログイン" }).click();
  await page.waitForSelector("section.card");
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
} finally {
  await browser.close();
}
