// A home-device operator publishes a discovered device in the ECHONET Lite
// adapter's web UI (Japanese), in headless Chromium: the devices listed,
// the door lock (not approved by the demo) published, the decision found in
// the consent trail under the operator's name, a malformed EOJ refused
// beside its field.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER,
// MUSUBI_UI_PASSWORD, MUSUBI_UI_SHOTS, MUSUBI_UI_DEVICE (the lock's id).
import { expect, login, shots, withPage } from "./common.mjs";

const device = process.env.MUSUBI_UI_DEVICE;

await withPage("ja-JP", async (page) => {
  await login(page, "ja", "#devices");
  const row = page.locator(`#device-${device}`);
  expect((await row.locator(".state").textContent()).includes("非公開"), "the lock is not published yet");
  await row.getByRole("button", { name: "公開する" }).click();
  await page.locator(`#device-${device} .state .ok`).waitFor();
  expect((await row.locator(".state").textContent()).includes("公開中"), "published");
  await page.screenshot({ path: `${shots}/adapter-devices-ja.png`, fullPage: true });

  await page.getByRole("button", { name: "今すぐ探索" }).click();
  await page.waitForFunction(() => document.querySelector("#discovered")?.textContent.startsWith("探索:"));

  // A class that does not exist is named beside its field.
  await page.getByLabel("機器クラス").fill("toaster");
  await page.getByRole("button", { name: "クラスに適用" }).click();
  await page.waitForFunction(() => document.querySelector("#by-class-class-error").textContent.includes("toaster"));

  await page.getByLabel("アドレス", { exact: true }).fill("127.0.0.1");
  await page.getByLabel("オブジェクト (EOJ").fill("xyz");
  await page.getByRole("button", { name: "送信専用機器を追加" }).click();
  await page.waitForFunction(() => document.querySelector("#add-device-eoj-error").textContent !== "");

  await page.getByRole("link", { name: "同意の記録" }).click();
  await page.waitForSelector("#approvals");
  const first = page.locator("#approvals tbody tr").first();
  const text = await first.textContent();
  expect(text.includes(device) && text.includes("公開中") && text.includes(process.env.MUSUBI_UI_USER), `the trail: ${text}`);
  await page.screenshot({ path: `${shots}/adapter-approvals-ja.png`, fullPage: true });
  const missing = await page.evaluate(() => document.documentElement.dataset.missing);
  expect(missing === "", `every text in Japanese: ${missing}`);
  console.log(`ok: device ${device} published`);
});
