// A service administrator publishes a WSDL, sets a service's time-out and
// grants access in the security server's web UI (English), in headless Chromium.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER, MUSUBI_UI_PASSWORD,
// MUSUBI_UI_WSDL (the WSDL's text), MUSUBI_UI_GRANT (who gets access),
// MUSUBI_UI_SHOTS; exits non-zero on the first failure.
import { expect, login, shots, withPage } from "./common.mjs";

await withPage("en-GB", async (page) => {
  await login(page, "en", "section.card");
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

  // Refreshing a pasted WSDL needs its text again: said beside the button.
  await page.locator("section.card", { hasText: "file:///srv/home.wsdl" }).getByRole("button", { name: "Refresh" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("section.card .action [role=alert]")].some((e) => e.textContent));

  // The service's time-out: out of range refused at the field, then saved.
  await service.getByLabel("Time-out (s)").fill("0");
  await service.getByRole("button", { name: "Save" }).click();
  await page.waitForFunction(() => [...document.querySelectorAll("[id$=-timeout_secs-error]")].some((e) => e.textContent.includes("3600")));
  await service.getByLabel("Time-out (s)").fill("30");
  await page.evaluate(() => delete document.documentElement.dataset.ready);
  await service.getByRole("button", { name: "Save" }).click();
  await page.waitForFunction(() => document.documentElement.dataset.ready); // saved: the page is shown anew
  expect(await service.getByLabel("Time-out (s)").inputValue() === "30", "the time-out saved");

  // Grant access to the consumer's subsystem.
  await service.getByLabel(/Subsystem, member/).fill(process.env.MUSUBI_UI_GRANT);
  await service.getByRole("button", { name: "Grant" }).click();
  await page.locator("div.service", { hasText: "getHumidity" }).getByRole("listitem", { hasText: process.env.MUSUBI_UI_GRANT }).waitFor();
  await page.screenshot({ path: `${shots}/services-en.png`, fullPage: true });
  const rights = await page.locator("div.service", { hasText: "getHumidity" }).getByRole("listitem").count();
  expect(rights === 1, `one access right, got ${rights}`);

  // The same right seen by client; a local group made and given a member.
  await page.getByRole("link", { name: "Access rights" }).click();
  await page.locator("#rights td", { hasText: "getHumidity" }).first().waitFor();
  await page.locator("#add-group").getByLabel("Group code").fill("carers");
  await page.getByRole("button", { name: "Add group" }).click();
  await page.locator("#group-carers").waitFor();
  await page.locator("#member-carers").getByLabel("Member or subsystem").fill("not an id");
  await page.locator("#member-carers").getByRole("button", { name: "Add member" }).click();
  await page.waitForFunction(() => document.querySelector("#member-carers-member-error").textContent.length > 0);
  await page.locator("#member-carers").getByLabel("Member or subsystem").fill(process.env.MUSUBI_UI_GRANT);
  await page.locator("#member-carers").getByRole("button", { name: "Add member" }).click();
  await page.locator("#group-carers li", { hasText: process.env.MUSUBI_UI_GRANT }).waitFor();
  await page.screenshot({ path: `${shots}/access-en.png`, fullPage: true });
  console.log("ok: WSDL added and access granted in the web UI");
});
