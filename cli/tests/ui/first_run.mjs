// The first run of a security server's web UI, as a person does it, in
// headless Chromium: the setup wizard (Japanese, from the browser's
// language), a wrong and then the right setup token, the dashboard, English,
// logging out, failed logins that make the next attempt wait.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_SETUP_TOKEN and
// MUSUBI_UI_SHOTS (a folder for screenshots); exits non-zero on the first failure.
import { expect, shots, url, withPage } from "./common.mjs";

const token = process.env.MUSUBI_UI_SETUP_TOKEN;

await withPage("ja-JP", async (page) => {
  const failed = [];
  page.on("requestfailed", (r) => failed.push(r.url()));
  page.on("pageerror", (e) => failed.push(`page error: ${e.message}`));
  const heading = async () => (await page.locator("h1").first().textContent()).trim();

  await page.goto(`${url}/`);
  await page.waitForSelector("#setup");
  expect((await heading()) === "初期設定", `the wizard in Japanese, got ${await heading()}`);
  expect(await page.getByLabel("セットアップトークン").isVisible(), "a labelled token field");

  // A wrong token: the error stands next to the token field.
  await page.getByLabel("セットアップトークン").fill("not-the-token");
  await page.getByLabel("ユーザー名").fill("admin");
  await page.getByLabel("パスワード").fill("a long passphrase");
  await page.getByRole("button", { name: "最初のユーザーを作成" }).click();
  await page.waitForFunction(() => document.querySelector("#setup-setup_token-error").textContent.length > 0);
  const refused = await page.locator("#setup-setup_token-error").textContent();
  expect(refused.startsWith("セットアップトークンが違う"), `the server's refusal in Japanese: ${refused}`);
  await page.screenshot({ path: `${shots}/setup-wizard-ja.png`, fullPage: true });

  // The right one: logged in, on the dashboard.
  await page.getByLabel("セットアップトークン").fill(token);
  await page.keyboard.press("Enter");
  await page.waitForSelector("section.card");
  expect((await heading()) === "ダッシュボード", `the dashboard, got ${await heading()}`);
  expect((await page.locator("#who").textContent()).startsWith("admin"), "the user shown");
  await page.screenshot({ path: `${shots}/dashboard-ja.png`, fullPage: true });

  // English, kept across pages.
  await page.selectOption("#lang", "en");
  await page.waitForFunction(() => document.querySelector("h1").textContent === "Dashboard");
  await page.screenshot({ path: `${shots}/dashboard-en.png`, fullPage: true });
  // The setup steps, in English too, before anything is set up.
  await page.getByRole("link", { name: "Keys and certificates" }).click();
  await page.waitForSelector("#initialise");
  expect(await page.getByLabel("Configuration anchor (XML file from the central server)").isVisible(), "the anchor field in English");
  const missing = await page.evaluate(() => document.documentElement.dataset.missing);
  expect(missing === "", `every text in English: ${missing}`);
  await page.screenshot({ path: `${shots}/setup-initialise-en.png`, fullPage: true });

  // Users and API keys: a read-only colleague and a monitoring key.
  await page.getByRole("link", { name: "Users and API keys" }).click();
  await page.waitForSelector("#add-user");
  await page.locator("#add-user").getByLabel("User name").fill("watcher");
  await page.locator("#add-user").getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.waitForFunction(() => document.querySelector("#add-user-password-error").textContent.includes("characters"));
  await page.locator("#add-user").getByLabel("Password").fill("a watcher's passphrase");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.locator("#users td", { hasText: "watcher" }).waitFor();
  await page.locator("#add-key").getByLabel("Name").fill("monitoring");
  await page.getByRole("button", { name: "Make API key" }).click();
  await page.waitForSelector("#new-key:not([hidden]) code");
  await page.screenshot({ path: `${shots}/users-en.png`, fullPage: true });

  // Log out; wrong passwords; then even the right one must wait.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForSelector("#login");
  expect((await heading()) === "Log in to Musubi", `the login page, got ${await heading()}`);
  for (let i = 0; i < 3; i++) {
    await page.getByLabel("User name").fill("admin");
    await page.getByLabel("Password").fill(`wrong guess ${i}`);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForFunction(() => document.querySelector("#login-password-error").textContent.includes("wrong"));
    await page.evaluate(() => { document.querySelector("#login-password-error").textContent = ""; });
  }
  // Three more wrong guesses, each once the wait before it is over (1, 2, 4 s):
  // the wait after them (8 s) outlasts the checks below on a busy machine.
  const clearErrors = () => page.evaluate(() => {
    document.querySelector("#login-password-error").textContent = "";
    document.querySelector("#login-error").textContent = "";
  });
  for (let i = 3; i < 6; i++) {
    await clearErrors();
    await page.locator("#login-username").fill("admin");
    await page.locator("#login-password").fill(`wrong guess ${i}`);
    for (;;) {
      await clearErrors();
      await page.getByRole("button", { name: "Log in" }).click();
      await page.waitForFunction(() => document.querySelector("#login-password-error").textContent.includes("wrong")
        || document.querySelector("#login-error").textContent.includes("wait"));
      if (await page.evaluate(() => document.querySelector("#login-password-error").textContent.includes("wrong"))) break;
      await page.waitForTimeout(200);
    }
  }
  await page.evaluate(() => { document.querySelector("#login-password-error").textContent = ""; });
  await page.getByLabel("Password").fill("a long passphrase");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForFunction(() => document.querySelector("#login-error").textContent.includes("wait"));
  await page.screenshot({ path: `${shots}/login-wait-en.png`, fullPage: true });
  // The same refusal in Japanese, from its code and the seconds it names.
  await page.selectOption("#lang", "ja");
  await page.waitForFunction(() => document.querySelector("h1").textContent === "Musubi にログイン");
  await page.getByLabel("ユーザー名").fill("admin");
  await page.getByLabel("パスワード").fill("a long passphrase");
  await page.getByRole("button", { name: "ログイン" }).click();
  await page.waitForFunction(() => /\d+ 秒待ってから/.test(document.querySelector("#login-error").textContent));
  await page.screenshot({ path: `${shots}/login-wait-ja.png`, fullPage: true });
  expect((await heading()) === "Musubi にログイン", "still logged out");
  expect(failed.length === 0, `no failed loads: ${failed.join(", ")}`);
  console.log("ok: first run, dashboard, languages, logout, login throttling");
});
