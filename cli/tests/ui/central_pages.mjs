// The network's governors at work in the central server's web UI (English),
// in headless Chromium: a member and its subsystem added (a malformed id
// refused beside its field), a server put in maintenance and back, a global
// group made with a member, the trust services listed (a bad TSA URL
// refused), a configuration generated and the anchor downloaded.
// Run by cli/tests/setup.rs with MUSUBI_UI_URL, MUSUBI_UI_USER,
// MUSUBI_UI_PASSWORD, MUSUBI_UI_SHOTS; prints the anchor's path.
import { expect, login, shots, withPage } from "./common.mjs";

const member = "MEMBER:DEMO/GOV/9999";

await withPage("en-GB", async (page) => {
  await login(page, "en", "table");
  const goTo = async (name, ready) => {
    await page.getByRole("link", { name, exact: true }).click();
    await page.waitForSelector(ready);
  };

  // Members: a malformed id is named at its field; a good one is listed, then its subsystem.
  await goTo("Members", "#add-member");
  await page.getByLabel("Member (MEMBER:INSTANCE/CLASS/CODE)").fill("GOV/9999");
  await page.getByLabel("Name", { exact: true }).fill("Test Town");
  await page.getByRole("button", { name: "Add member", exact: true }).click();
  await page.waitForFunction(() => document.querySelector("#add-member-id-error").textContent !== "");
  await page.getByLabel("Member (MEMBER:INSTANCE/CLASS/CODE)").fill(member);
  await page.getByRole("button", { name: "Add member", exact: true }).click();
  const row = page.locator("#members tr", { hasText: member });
  await row.waitFor();
  await row.getByLabel("Subsystem code").fill("care");
  await row.getByRole("button", { name: "Add subsystem" }).click();
  await page.locator("#members li", { hasText: "SUBSYSTEM:DEMO/GOV/9999/care" }).waitFor();
  await page.screenshot({ path: `${shots}/central-members-en.png`, fullPage: true });

  // Security servers: the demo's, one put in maintenance with a message and back.
  await goTo("Security servers", "#servers");
  const servers = await page.locator("#servers tbody tr").count();
  expect(servers >= 2, `the demo's servers listed, got ${servers}`);
  const first = page.locator("#servers tbody tr").first();
  await first.getByLabel("Message to the server's administrators").fill("moving racks");
  await first.getByRole("button", { name: "Start maintenance" }).click();
  await page.locator("#servers td", { hasText: "moving racks" }).waitFor();
  await page.screenshot({ path: `${shots}/central-servers-en.png`, fullPage: true });
  await page.getByRole("button", { name: "End maintenance" }).click();
  await page.waitForFunction(() => !document.body.textContent.includes("moving racks"));

  // Global groups: a new group with the new subsystem.
  await goTo("Global groups", "#add-group-member");
  await page.getByLabel("Group code").fill("care-providers");
  await page.getByLabel("Member or subsystem").fill("SUBSYSTEM:DEMO/GOV/9999/care");
  await page.getByLabel("Description (for a new group)").fill("Care providers");
  await page.getByRole("button", { name: "Add to group" }).click();
  await page.locator("#group-care-providers li", { hasText: "SUBSYSTEM:DEMO/GOV/9999/care" }).waitFor();
  await page.screenshot({ path: `${shots}/central-groups-en.png`, fullPage: true });

  // Trust services: the demo's CA and TSA; a TSA without a usable URL is refused at the field.
  await goTo("Trust services", "#cas");
  expect(await page.locator("#cas tbody tr").count() >= 1, "a CA");
  expect(await page.locator("#tsas tbody tr").count() >= 1, "a TSA");
  await page.getByLabel("Time-stamping URL").fill("ftp://tsa.example");
  await page.locator("#add-tsa").getByLabel("Name").fill("Other TSA");
  await page.getByRole("button", { name: "Add TSA" }).click();
  await page.waitForFunction(() => document.querySelector("#add-tsa-url-error").textContent !== "");
  await page.screenshot({ path: `${shots}/central-trust-en.png`, fullPage: true });

  // Global configuration: generated now, and the anchor for new servers downloaded.
  await goTo("Global configuration", "#globalconf");
  const before = await page.locator("#generated-at").textContent();
  await page.getByRole("button", { name: "Generate now" }).click();
  await page.waitForFunction((b) => document.querySelector("#generated-at")?.textContent !== b, before);
  await page.screenshot({ path: `${shots}/central-globalconf-en.png`, fullPage: true });
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#anchor").click()]);
  const path = `${shots}/configuration-anchor.xml`;
  await download.saveAs(path);
  console.log(`ok: anchor ${path}`);
});
