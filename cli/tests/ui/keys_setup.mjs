// A security officer sets a new security server up in the web UI (Japanese),
// in headless Chromium: the first user, initialisation with the central
// server's anchor, both keys, their CSRs downloaded, the CA's certificates
// imported, the server starting, the authentication certificate registered
// and, once the central server approves, shown registered.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_SETUP_TOKEN,
// MUSUBI_UI_ANCHOR, MUSUBI_UI_SHOTS. What a person gets from elsewhere (the
// CA's certificate, the approval) it asks for on stdout, one line each
// ("csr ROLE PATH", "approve"); the answer comes on stdin.
import { createInterface } from "node:readline";
import { expect, shots, url, withPage } from "./common.mjs";

const input = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(question) {
  console.log(question);
  const { value, done } = await input.next();
  expect(!done, `an answer to ${question}`);
  return value;
}

await withPage("ja-JP", async (page) => {
  await page.goto(`${url}/`);
  await page.waitForSelector("#setup");
  await page.getByLabel("セットアップトークン").fill(process.env.MUSUBI_UI_SETUP_TOKEN);
  await page.getByLabel("ユーザー名").fill("officer");
  await page.getByLabel("パスワード").fill("a long passphrase 7");
  await page.getByRole("button", { name: "最初のユーザーを作成" }).click();
  await page.getByRole("link", { name: "まだ設定されていません" }).click();
  await page.waitForSelector("#initialise");
  const steps = page.locator("#setup-steps li");
  expect(await steps.count() === 6, "six setup steps");
  expect((await page.locator('#setup-steps [aria-current="step"]').textContent()).includes("初期化"), "the first step is current");

  // Initialise: a mistyped PIN and a wrong owner are named beside their fields.
  await page.getByLabel("設定アンカー").setInputFiles(process.env.MUSUBI_UI_ANCHOR);
  await page.getByLabel("所有者").fill("SUBSYSTEM:DEMO/GOV/1001/x");
  await page.getByLabel("サーバーコード").fill("ss1");
  await page.getByLabel("トークン PIN", { exact: true }).fill("correct-horse-7");
  await page.getByLabel("トークン PIN (確認)").fill("correct-horse-8");
  await page.getByRole("button", { name: "初期化" }).click();
  await page.waitForFunction(() => document.querySelector("#initialise-pin2-error").textContent !== "");
  expect(await page.locator("#initialise-pin2-error").textContent() === "2 つの PIN が一致しません", "PINs differ");
  await page.getByLabel("トークン PIN (確認)").fill("correct-horse-7");
  await page.getByRole("button", { name: "初期化" }).click();
  await page.waitForFunction(() => document.querySelector("#initialise-owner-error").textContent !== "");
  await page.screenshot({ path: `${shots}/setup-initialise-ja.png`, fullPage: true });
  await page.getByLabel("所有者").fill("MEMBER:DEMO/GOV/1001");
  await page.getByRole("button", { name: "初期化" }).click();

  // Keys: authentication first (the form proposes it), then signing.
  await page.waitForSelector("#generate-key");
  await page.getByRole("button", { name: "鍵を生成" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#keys tbody tr").length === 1);
  await page.getByLabel("用途").selectOption("sign");
  await page.getByRole("button", { name: "鍵を生成" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#keys tbody tr").length === 2);

  // Each key's CSR goes to the CA; its certificate comes back and is imported.
  for (const [role, name, n] of [["auth", "認証", 1], ["sign", "署名", 2]]) {
    const row = page.locator("#keys tbody tr", { hasText: name });
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row.getByRole("button", { name: "CSR をダウンロード" }).click(),
    ]);
    const csr = `${shots}/${role}.csr.pem`;
    await download.saveAs(csr);
    const cert = await ask(`csr ${role} ${csr}`);
    await page.getByLabel("証明書ファイル (PEM)").setInputFiles(cert);
    await page.getByRole("button", { name: "証明書をインポート" }).click();
    await page.waitForFunction((n) => document.querySelectorAll("#certificates tbody tr").length === n, n);
  }

  // Every step before registration is done: the server starts by itself and
  // the page, still logged in, offers the registration.
  const register = page.getByRole("button", { name: "登録申請" });
  await register.waitFor({ timeout: 60000 });
  await page.screenshot({ path: `${shots}/keys-ja.png`, fullPage: true });
  expect(await page.getByLabel("他のサーバーから届くこのサーバーのアドレス").inputValue() === new URL(url).hostname, "the address proposed");
  await register.click();
  await page.waitForSelector("#request-sent");
  const auth = page.locator("#certificates tbody tr", { hasText: "認証" });
  expect(await auth.locator(".status").textContent() === "登録申請中", "registration in progress");

  // The certificate the server uses cannot be disabled; the reason is shown beside the button.
  await auth.getByRole("button", { name: "無効にする" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("#certificates [role=alert]")].some((e) => e.textContent));
  const refusal = await auth.locator("[role=alert]").first().textContent();
  expect(refusal.startsWith("稼働中のサーバーがこの証明書を使用しています"), `the refusal in Japanese: ${refusal}`);

  // Until the central server approves, the dashboard alerts.
  await page.getByRole("link", { name: "ダッシュボード" }).click();
  const notRegistered = page.locator('#alerts [data-code="not_registered"]');
  await notRegistered.waitFor();
  expect((await notRegistered.textContent()).includes("認証証明書が載っていません"), "the alert in Japanese");
  await page.screenshot({ path: `${shots}/dashboard-alerts-ja.png`, fullPage: true });

  expect(await ask("approve") === "approved", "the central server approved");
  await page.reload();
  await page.waitForSelector("#alerts");
  expect(await notRegistered.count() === 0, "no alert once registered");
  await page.getByRole("link", { name: "鍵と証明書" }).click();
  await page.waitForSelector("#certificates");
  expect(await auth.locator(".status").textContent() === "登録済み", "registered");
  expect(await page.locator("#setup-steps").count() === 0, "no steps left once registered");
  const missing = await page.evaluate(() => document.documentElement.dataset.missing);
  expect(missing === "", `every text in Japanese: ${missing}`);
  await page.screenshot({ path: `${shots}/keys-registered-ja.png`, fullPage: true });
  console.log("ok: set up and registered");
});
process.exit(0);
