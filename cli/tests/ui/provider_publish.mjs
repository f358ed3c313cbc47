// A service administrator publishes a WSDL and grants access in the security
// server's web UI (English), in headless Chromium.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER, MUSUBI_UI_PASSWORD,
// MUSUBI_UI_WSDL (the WSDL's text), MUSUBI_UI_GRANT (who gets access),
// MUSUBI_UI_SHOTS; exits non-zero on the first failure.
import { chromium } from "playwright-core";

const url = process.env.MUSUBI_UI_URL;
const shots = process.env.MUSUBI_UI_SHOTS;

function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.MUSUBI_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale: "en-GB" });
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector("#login");
  await page.getByLabel("User name").fill(process.env.MUSUBI_UI_USER);
  await page.getByLabel("Password").fill(process.env.MUSUBI_UI_PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForSelector("section.card");
  await page.getByRole("link", { name: "Services" }).click();
  await page.waitForSelector("#add-wsdl");

  // A broken WSDL: the error names the line, next to the field.
  await page.getByLabel(/WSDL URL/).fill("file:///srv/home.wsdl");
  await page.getByLabel(/WSDL text/).fill(process.env.MUSUBI_UI_WSDL.replace("</wsdl:binding>", "</wsdl:bindin>"));
  await page.getByRole("button", { name: "Add WSDL" }).click();
  await page.waitForFunction(() => /line/.test(document.querySelector("#add-wsdl-wsdl-error").textContent
    + document.querySelector("#add-wsdl-error").textContent));
  await page.getByLabel(/WSDL text/).fill(process.env.MUSUBI_UI_WSDL);
  await page.getByRole("button", { name: "Add WSDL" }).click();
  const service = page.locator("div.service", { hasText: "getHumidity" });
  await service.waitFor();

  // Grant access to the consumer's subsystem.
  await service.getByLabel(/Subsystem, member/).fill(process.env.MUSUBI_UI_GRANT);
  await service.getByRole("button", { name: "Grant" }).click();
  await page.locator("div.service", { hasText: "getHumidity" }).getByRole("listitem", { hasText: process.env.MUSUBI_UI_GRANT }).waitFor();
  await page.screenshot({ path: `${shots}/services-en.png`, fullPage: true });
  const rights = await page.locator("div.service", { hasText: "getHumidity" }).getByRole("listitem").count();
  expect(rights === 1, `one access right, got ${rights}`);
  console.log("ok: WSDL added and access granted in the web UI");
} finally {
  await browser.close();
}
