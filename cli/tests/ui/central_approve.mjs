// A registration officer approves a security server's registration in the
// central server's web UI (Japanese), in headless Chromium.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER, MUSUBI_UI_PASSWORD,
// MUSUBI_UI_SHOTS; exits non-zero on the first failure.
import { expect, login, shots, withPage } from "./common.mjs";

await withPage("ja-JP", async (page) => {
  await login(page, "ja", "table");
  expect((await page.locator("h1").textContent()) === "登録申請", "the requests page");
  const pending = page.locator("td.status-pending");
  const before = await pending.count();
  expect(before >= 1, `pending requests shown, got ${before}`);
  await page.screenshot({ path: `${shots}/central-requests-ja.png`, fullPage: true });
  // Approve the first pending request (keyboard: focus the button, press Enter).
  const first = page.locator("button[id^=approve-]").first();
  const id = (await first.getAttribute("id")).replace("approve-", "");
  await first.focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#request-${id} td.status-approved`);
  expect((await page.locator(`#request-${id} td.status-approved`).textContent()) === "承認済み", "shown approved");
  // A rejection needs its reason: the error stands next to the field.
  if (before > 1) {
    const other = page.locator("form[id^=reject-]").first();
    await other.getByRole("button", { name: "却下" }).click();
    await page.waitForFunction(() => [...document.querySelectorAll("form[id^=reject-] .error")].some((e) => e.textContent.length > 0));
  }
  await page.screenshot({ path: `${shots}/central-approved-ja.png`, fullPage: true });
  console.log(`ok: request ${id} approved in the central server's web UI`);
});
