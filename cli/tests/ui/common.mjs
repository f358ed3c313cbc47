// What the browser tests share: headless Debian Chromium, a fresh context
// that accepts the admin API's self-signed certificate, logging in, checks.
import { chromium } from "playwright-core";

export const url = process.env.MUSUBI_UI_URL;
export const shots = process.env.MUSUBI_UI_SHOTS;

export function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
}

// Runs `test(page)` in a new browser page with the given locale; always closes the browser.
export async function withPage(locale, test) {
  const browser = await chromium.launch({
    executablePath: process.env.MUSUBI_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, locale, acceptDownloads: true });
    const page = await context.newPage();
    try {
      await test(page);
    } catch (e) {
      // What the page showed when the test failed, beside the other screenshots.
      const name = process.argv[1].split("/").pop().replace(/\.mjs$/, "");
      await page.screenshot({ path: `${shots}/failed-${name}.png`, fullPage: true }).catch(() => null);
      throw e;
    }
  } finally {
    await browser.close();
  }
}

const LABELS = {
  ja: { user: "ユーザー名", password: "パスワード", login: "ログイン" },
  en: { user: "User name", password: "Password", login: "Log in" },
};

// Opens the UI and logs in as MUSUBI_UI_USER with MUSUBI_UI_PASSWORD; waits for `ready` (a selector).
export async function login(page, lang, ready) {
  const l = LABELS[lang];
  await page.goto(`${url}/`);
  await page.waitForSelector("#login");
  await page.getByLabel(l.user).fill(process.env.MUSUBI_UI_USER);
  await page.getByLabel(l.password).fill(process.env.MUSUBI_UI_PASSWORD);
  await page.getByRole("button", { name: l.login }).click();
  await page.waitForSelector(ready);
}
