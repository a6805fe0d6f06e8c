// End-to-end test of hegn's staff web page in headless Chromium.
//
// Run by tests/integration/test_web.sh, which starts a demo hegnd and sets:
//   HEGN_URL    https://127.0.0.1:PORT
//   HEGN_DEMO   the demo directory (demo-users.txt, pki/)
//   HEGN_BIN    the hegn command line (for `hegn fetch` as hovmand-care)
//   HEGN_SHOTS  where to save a screenshot of every page
// Prints "ok - ..." / "not ok - ..." lines; exits 1 when any check fails.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const URL = process.env.HEGN_URL;
const DEMO = process.env.HEGN_DEMO;
const HEGN = process.env.HEGN_BIN;
const SHOTS = process.env.HEGN_SHOTS;
const CPR = "2509479989";

let passes = 0;
let fails = 0;
function check(what, cond) {
	if (cond) {
		passes++;
		console.log(`ok - ${what}`);
	} else {
		fails++;
		console.log(`not ok - ${what}`);
	}
}

const users = {};
for (const line of readFileSync(join(DEMO, "demo-users.txt"), "utf8").split("\n")) {
	const [name, password, role, party] = line.trim().split(/\s+/);
	if (name)
		users[name] = { password, role, party };
}

let shot = 0;
async function screenshot(page, name) {
	shot++;
	await page.screenshot({ path: join(SHOTS, `${String(shot).padStart(2, "0")}-${name}.png`),
	    fullPage: true });
}

async function login(page, user, password) {
	await page.goto(`${URL}/`);
	await page.getByLabel(/Brugernavn|User name/).fill(user);
	await page.getByLabel(/Adgangskode|Password/).fill(password);
	await page.getByRole("button", { name: /Log ind|Log in/ }).click();
	await page.waitForLoadState("domcontentloaded");
}

async function logout(page) {
	await page.getByRole("button", { name: /Log ud|Log out/ }).click();
	await page.waitForURL(/\/web\/login/);
}

const profile = mkdtempSync(join(tmpdir(), "hegn-chromium-"));
const fetched = mkdtempSync(join(tmpdir(), "hegn-fetch-"));
mkdirSync(SHOTS, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
	executablePath: "/usr/bin/chromium",
	headless: true,
	ignoreHTTPSErrors: true,
	args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = context.pages()[0] || await context.newPage();
// Anything the page tries to load from outside hegnd is a failure.
const foreign = [];
page.on("request", (req) => {
	if (!req.url().startsWith(URL) && !req.url().startsWith("data:"))
		foreign.push(req.url());
});
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });

try {
	// 1. Login: a wrong password is refused without saying which part was wrong.
	await page.goto(`${URL}/`);
	check("/ leads to the login page", /\/web\/(login)?$/.test(page.url()));
	await screenshot(page, "login");
	await login(page, "karin", "not-the-password");
	check("a wrong password is refused",
	    await page.getByRole("alert").filter({ hasText: /Forkert brugernavn|Wrong user name/ }).count() === 1);
	await screenshot(page, "login-failed");
	const cookies0 = await context.cookies();
	await login(page, "karin", users.karin.password);
	check("the caseworker lands on the compose page", page.url().endsWith("/web/compose"));
	const session = (await context.cookies()).find((c) => c.name === "hegn_session");
	check("session cookie is HttpOnly, Secure, SameSite=Strict, Path=/web",
	    session && session.httpOnly && session.secure && session.sameSite === "Strict" &&
	    session.path === "/web" && session.value.length === 64);
	check("no session before login", !cookies0.some((c) => c.name === "hegn_session"));
	await screenshot(page, "compose");

	// 2. Language switch and back.
	await page.getByRole("link", { name: "English" }).click();
	check("the English page says New message",
	    await page.getByRole("heading", { level: 1, name: "New message" }).count() === 1);
	await screenshot(page, "compose-english");
	await page.getByRole("link", { name: "Dansk" }).click();
	check("back in Danish", await page.getByRole("heading", { level: 1, name: "Ny besked" }).count() === 1);

	// 3. Compose a referral: find the citizen's providers, services, text per class, attachments.
	await page.getByLabel("Slags").selectOption("referral");
	await page.getByLabel("Borgerens CPR-nummer").fill(CPR);
	await page.getByLabel("Borgerens navn").fill("Elmer Testesen");
	await page.getByRole("button", { name: "Find borgerens leverandører" }).click();
	await page.waitForLoadState("domcontentloaded");
	check("the lookup keeps the CPR in the form",
	    await page.getByLabel("Borgerens CPR-nummer").inputValue() === CPR);
	await screenshot(page, "compose-lookup");
	await page.getByRole("checkbox", { name: /Praktisk hjælp/ }).check();
	await page.locator("#to-hovmand-care").check();
	await page.locator("#f-start_date").fill("2026-12-01");
	await page.locator("#f-care_text").fill("Rengøring hver 14. dag. Går med rollator.");
	await page.getByLabel("Diagnoser").fill("Type 2-diabetes\nHjerteinsufficiens");
	await page.locator("#f-files").setInputFiles({ name: "visitationsafgoerelse.txt",
	    mimeType: "text/plain", buffer: Buffer.from("Praktisk hjælp hver 14. dag.\n") });
	await page.locator("#attach-list li").first().waitFor();
	// Drag and drop a second file onto the drop zone.
	await page.evaluate(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(["%PDF-1.4\n%%EOF\n"], "plan.pdf", { type: "application/pdf" }));
		document.getElementById("dropzone").dispatchEvent(new DragEvent("drop",
		    { dataTransfer: dt, bubbles: true, cancelable: true }));
	});
	await page.locator("#attach-list li").nth(1).waitFor();
	const att = JSON.parse(await page.locator("#attachments").inputValue());
	check("two attachments, by picker and by drag and drop",
	    att.length === 2 && att[0].filename === "visitationsafgoerelse.txt" &&
	    att[1].filename === "plan.pdf");
	await screenshot(page, "compose-filled");

	// 4. Preview: health is removed for hovmand-care (practical help only).
	await page.getByRole("button", { name: "Vis hvad modtageren får" }).click();
	await page.waitForLoadState("domcontentloaded");
	check("the preview names the recipient",
	    await page.locator('section.recipient[data-party="hovmand-care"]').count() === 1);
	check("the preview shows health as removed",
	    await page.locator('.removed [data-removed="health"]').count() === 1);
	check("the preview does not show the diagnoses",
	    (await page.locator("main").innerText()).indexOf("Hjerteinsufficiens") < 0);
	check("the preview shows the care text and both attachments",
	    (await page.locator("main").innerText()).includes("rollator") &&
	    await page.locator("ul.attachments li").count() === 2);
	await screenshot(page, "preview");

	// 5. Send, then the timeline.
	await page.locator("#send").click();
	await page.waitForURL(/\/web\/message\//);
	const id = (await page.locator("#message-id").innerText()).trim();
	check("sent: the timeline shows the message id", id.length > 0);
	check("the timeline says submitted", await page.locator("#state").getAttribute("data-state") === "submitted");
	check("the timeline lists sealed and minimised",
	    await page.locator('li[data-event="sealed"]').count() === 1 &&
	    await page.locator('li[data-event="minimised"]').count() === 1);
	await screenshot(page, "timeline-sent");

	// 6. hovmand-care fetches with the reference client; the receipt acknowledges it.
	execFileSync(HEGN, ["fetch", "--server", URL, "--cert", join(DEMO, "pki/hovmand-care.pem"),
	    "--key", join(DEMO, "pki/hovmand-care.key"), "--ca", join(DEMO, "pki/ca.pem"),
	    "--out", fetched, "--once"], { stdio: ["ignore", "ignore", "inherit"] });
	await page.reload();
	check("after the provider's fetch the timeline says acknowledged",
	    await page.locator("#state").getAttribute("data-state") === "acknowledged");
	check("the timeline lists fetched and acknowledged",
	    await page.locator('li[data-event="fetched"]').count() === 1 &&
	    await page.locator('li[data-event="acknowledged"]').count() === 1);
	await screenshot(page, "timeline-acknowledged");

	// 7. Dashboard before and after a fax registered in two clicks.
	await page.getByRole("link", { name: "Overblik" }).click();
	const before = Number(await page.locator("#totals").getAttribute("data-fallback"));
	check("the dashboard draws both charts",
	    await page.locator("svg#chart-weeks").count() === 1 &&
	    await page.locator("svg#chart-parties").count() === 1);
	await screenshot(page, "dashboard-before");
	await page.getByRole("link", { name: "Fax, telefon, post" }).click();      // click 1
	await screenshot(page, "external");
	await page.getByLabel("Part").selectOption("hovmand-care");
	await page.getByRole("button", { name: "Fax" }).click();                   // click 2
	check("the fax is registered", await page.getByRole("status").count() === 1);
	await screenshot(page, "external-registered");
	await page.getByRole("link", { name: "Overblik" }).click();
	const after = Number(await page.locator("#totals").getAttribute("data-fallback"));
	check(`the dashboard's fallback count goes up (${before} -> ${after})`, after === before + 1);
	await screenshot(page, "dashboard-after");

	// 7b. A second referral, to the municipal home care from today, goes by fax in two clicks.
	const today = new Date().toISOString().slice(0, 10);
	await page.getByRole("link", { name: "Ny besked" }).click();
	await page.getByLabel("Borgerens CPR-nummer").fill(CPR);
	await page.getByRole("checkbox", { name: /Praktisk hjælp/ }).check();
	await page.locator("#to-ringsted-homecare").check();
	await page.locator("#f-start_date").fill(today);
	await page.getByLabel("Diagnoser").fill("Type 2-diabetes");
	await page.getByRole("button", { name: "Vis hvad modtageren får" }).click();
	check("nothing is removed for the municipal home care (approved for nursing)",
	    await page.locator(".kept").count() === 1 &&
	    (await page.locator("main").innerText()).includes("Type 2-diabetes"));
	await page.locator("#send").click();
	await page.waitForURL(/\/web\/message\//);
	check("the second referral is sent", (await page.locator("#message-id").innerText()).trim().length > 0);
	await page.getByRole("button", { name: "Sendt pr. fax" }).click();
	await page.waitForURL(/registered=1/);
	check("the timeline shows the fax fallback",
	    await page.locator("#state").getAttribute("data-state") === "fallback" &&
	    await page.locator('li[data-event="fallback"]').count() === 1);
	check("a copy gone by fax is not offered for registration again",
	    await page.getByRole("button", { name: "Sendt pr. fax" }).count() === 0);
	await screenshot(page, "timeline-fallback");

	// 8. A form without the session's token is refused.
	const forged = await page.request.post(`${URL}/web/external`, {
		form: { channel: "fax", party: "hovmand-care", kind: "other", direction: "outbound",
		    reason: "forged" } });
	check("a POST without the CSRF token gets 403", forged.status() === 403);
	await page.getByRole("link", { name: "Sendte beskeder" }).click();
	check("sent messages list the referral", (await page.locator("main").innerText()).includes(id));
	await screenshot(page, "messages");
	await logout(page);

	// 9. The provider's dispatcher: inbox, the view (minimised, audited); no key, no sending.
	await login(page, "hovmand", users.hovmand.password);
	check("the dispatcher lands on the inbox", page.url().endsWith("/web/inbox"));
	await screenshot(page, "provider-inbox");
	await page.locator(`a[href="/web/view/${id}"]`).click();
	check("the dispatcher sees the care text", (await page.locator("main").innerText()).includes("rollator"));
	check("the dispatcher does not see health", await page.locator('h3[data-class="health"]').count() === 0 &&
	    (await page.locator("main").innerText()).indexOf("Hjerteinsufficiens") < 0);
	await screenshot(page, "provider-view");
	await page.getByRole("link", { name: "Ny besked" }).click();
	check("sending needs the provider's own system when hegn holds no key",
	    await page.getByRole("alert").filter({ hasText: "nøgle" }).count() === 1);
	await screenshot(page, "provider-compose");
	const dash = await page.request.get(`${URL}/web/dashboard`);
	check("a dispatcher may not open the dashboard", dash.status() === 403);
	await logout(page);

	// 9b. The home care's dispatcher (hegn holds its key) reports an observation.
	await login(page, "hjemmepleje", users.hjemmepleje.password);
	await page.getByRole("link", { name: "Ny besked" }).click();
	await page.getByLabel("Slags").selectOption("observation");
	await page.getByLabel("Borgerens CPR-nummer").fill(CPR);
	await page.locator("#to-ringsted-visitation").check();
	await page.locator("#f-care_text").fill("Borgeren virker mere forvirret end sidste uge.");
	await screenshot(page, "provider-compose-observation");
	await page.getByRole("button", { name: "Vis hvad modtageren får" }).click();
	check("the observation may go to the visitation office", await page.locator("#send").count() === 1);
	await screenshot(page, "provider-preview");
	await page.locator("#send").click();
	await page.waitForURL(/\/web\/message\//);
	const id3 = (await page.locator("#message-id").innerText()).trim();
	check("the observation is sent", id3.length > 0);
	await logout(page);
	await login(page, "karin", users.karin.password);
	await page.getByRole("link", { name: "Indbakke" }).click();
	check("the caseworker's inbox lists the observation",
	    (await page.locator("main").innerText()).includes(id3));
	await screenshot(page, "visitation-inbox");
	await page.locator(`a[href="/web/view/${id3}"]`).click();
	check("the caseworker opens the observation",
	    (await page.locator("main").innerText()).includes("forvirret"));
	await screenshot(page, "visitation-view");
	await logout(page);

	// 10. The auditor: the access log by CPR, the log's integrity, eDag2.
	await login(page, "revisor", users.revisor.password);
	check("the auditor lands on the access log", page.url().endsWith("/web/audit"));
	await page.getByLabel("CPR-nummer").fill(CPR);
	await page.getByRole("button", { name: "Søg" }).click();
	await page.waitForLoadState("domcontentloaded");
	const log = await page.locator("#access").innerText();
	check("the access log shows the caseworker's submission by name",
	    /message\.submit/.test(log) && log.includes("karin"));
	check("the access log shows the provider's fetch", /message\.fetch/.test(log) && log.includes("hovmand-care"));
	check("the access log shows the dispatcher's view by name", /message\.view/.test(log) && log.includes("hovmand"));
	check("the access log does not print the CPR", log.indexOf(CPR) < 0);
	await screenshot(page, "audit-search");
	await page.getByRole("link", { name: "Loggens integritet" }).click();
	check("the audit log verifies", await page.locator("#verify-status").getAttribute("data-ok") === "1");
	await screenshot(page, "audit-verify");
	await page.getByRole("link", { name: "eDag2-rapport" }).click();
	check("the eDag2 table has a row for hovmand-care",
	    (await page.locator("#edag2 tbody").innerText()).includes("hovmand-care"));
	check("the eDag2 total counts both faxes",
	    (await page.locator("#edag2 tfoot td").nth(1).innerText()).trim() === "2");
	await screenshot(page, "edag2");
	await page.getByRole("link", { name: "Overblik" }).click();
	await screenshot(page, "auditor-dashboard");
	await logout(page);
	check("after logout the compose page asks for a login",
	    (await page.goto(`${URL}/web/compose`)) && page.url().endsWith("/web/login"));
	check("nothing was loaded from outside hegnd", foreign.length === 0);
	check("no script errors in the console", consoleErrors.length === 0);
	if (consoleErrors.length)
		console.log(consoleErrors.join("\n"));
} catch (e) {
	fails++;
	console.log(`not ok - ${e.stack || e}`);
	try {
		await screenshot(page, "error");
	} catch (e2) {
		/* the page may be gone */
	}
} finally {
	await context.close();
	rmSync(profile, { recursive: true, force: true });
	rmSync(fetched, { recursive: true, force: true });
}
console.log(`${passes} passed, ${fails} failed`);
process.exit(fails === 0 ? 0 : 1);
