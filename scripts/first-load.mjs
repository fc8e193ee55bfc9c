// What Chromium downloads on a first visit to the dashboard (scripts/bench-first-load.sh):
// a fresh profile opens /login and waits until the wasm has hydrated, then signs in and a
// second fresh profile (the session cookie only, empty cache) opens a page. Bytes are
// Chromium's own count (`transferSize` of the navigation and every resource: the body as
// sent, compressed, plus headers), read through the Performance API once the page is
// interactive and the network idle.
// Usage: node scripts/first-load.mjs BASE_URL PASSWORD PATH...
import { createRequire } from "node:module";

// playwright-core as scripts/setup.sh installs it, into target/tools.
const require = createRequire(new URL("../target/tools/", import.meta.url));
const { chromium } = require("playwright-core");

const [base, password, ...paths] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

async function measure(context, path) {
  const page = await context.newPage();
  await page.goto(base + path);
  await page.waitForSelector("html[data-hydrated=true]", { timeout: 30000 });
  await page.waitForLoadState("networkidle");
  const entries = await page.evaluate(() =>
    performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
      .map((e) => ({ name: new URL(e.name).pathname, bytes: e.transferSize, body: e.encodedBodySize })));
  await page.close();
  return entries;
}

function report(label, entries) {
  let total = 0;
  console.log(`\n${label}`);
  console.log("| resource | transferred (bytes) |");
  console.log("|---|---:|");
  for (const e of entries) {
    total += e.bytes;
    console.log(`| \`${e.name}\` | ${e.bytes} |`);
  }
  console.log(`| **total** | **${total}** |`);
  return total;
}

const signedOut = await browser.newContext();
report("Chromium, first visit, signed out: /login", await measure(signedOut, "/login"));

// Sign in through the form, as a person would, then keep only the cookie.
const page = await signedOut.newPage();
await page.goto(base + "/login");
await page.waitForSelector("html[data-hydrated=true]");
await page.fill("input[name=username]", "admin");
await page.fill("input[name=password]", password);
await Promise.all([page.waitForURL(base + "/"), page.click("button[type=submit]")]);
const cookies = await signedOut.cookies();
await signedOut.close();

for (const path of paths) {
  const context = await browser.newContext();
  await context.addCookies(cookies);
  report(`Chromium, first visit, signed in (empty cache): ${path}`, await measure(context, path));
  await context.close();
}
await browser.close();
