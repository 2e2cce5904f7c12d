// The console in a real browser against a real server: an office enrolls
// a browser, reads a resident's complaint with its photo, asks for
// information, sees the answer, meets a stale write, approves by keyboard
// alone; the resident's phone (the CLI) sees each step; a revoked browser
// is locked out. Screenshots go to target/console/.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { SHOTS, axe, browser, page, photo, resident, sambung, startServer } from "./harness.mjs";

let server;
let chrome;
/**
 * A region outline for the map, as a deployment would install one (here a
 * rough polygon around Kota Bandung drawn for the test; real ones come from
 * BIG's boundaries).
 */
const BANDUNG = {
  type: "FeatureCollection",
  features: [
    {
      type: "Feature",
      properties: { name: "Kota Bandung" },
      geometry: {
        type: "Polygon",
        coordinates: [
          [
            [107.54, -6.96],
            [107.6, -6.98],
            [107.7, -6.97],
            [107.74, -6.92],
            [107.7, -6.86],
            [107.62, -6.84],
            [107.56, -6.87],
            [107.54, -6.96],
          ],
        ],
      },
    },
  ],
};

before(async () => {
  const outline = join(tmpdir(), `bandung-${process.pid}.geojson`);
  writeFileSync(outline, JSON.stringify(BANDUNG));
  server = await startServer({ args: ["--console-boundaries", outline] });
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
  await server?.stop();
});

/** Console errors other than the failed loads the tests provoke (412, 401). */
function unexpected(p) {
  return p.errors.filter((e) => !e.startsWith("Failed to load resource"));
}

/** Presses Tab until `selector` has the focus (at most `limit` times). */
async function tabTo(p, selector, limit = 80) {
  for (let n = 0; n < limit; n++) {
    if (await p.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await p.keyboard.press("Tab");
  }
  throw new Error(`Tab never reached ${selector}`);
}

test("an office handles a complaint from the queue to approval", async (t) => {
  const phone = resident(server, "warga-1");
  const complaint = phone.run(["template", "--kind", "complaint"]);
  const id = phone.run(["new", "--kind", "complaint", "--json", "-"], complaint);
  const picture = join(server.dir, "jalan-berlubang.png");
  photo(picture);
  phone.run(["attach", id, picture]);
  phone.run(["submit", id]);
  // A second complaint, elsewhere in the city, without a photo.
  const second = phone.run(
    ["new", "--kind", "complaint", "--json", "-"],
    JSON.stringify({
      ...JSON.parse(complaint),
      region: "32.73.02.1002",
      details: {
        ...JSON.parse(complaint).details,
        text: "Lampu jalan mati sepanjang Jalan Cibeunying sejak seminggu.",
        location: { lat: -6.8925, lon: 107.6337, accuracy_m: 12 },
      },
    }),
  );
  // A big photo kept as it is (1.4 MB): the console fetches it in ranges.
  const big = join(server.dir, "lampu-jalan.png");
  photo(big, 800, 600, true);
  phone.run(["attach", second, big, "--as-is"]);
  // A PDF beside it: the console opens it rather than showing it inline.
  const letter = join(server.dir, "surat-rt.pdf");
  writeFileSync(letter, "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
  phone.run(["attach", second, letter]);
  phone.run(["submit", second]);
  phone.sync();

  const p = await page(chrome);
  // What the page logged, printed when a step fails (the end asserts none).
  t.after(() => unexpected(p).length && console.log("page errors:", unexpected(p)));
  await p.goto(`${server.url}/console/`);

  await t.test("a bad code is refused and nothing is kept", async () => {
    await p.fill("#code", "AAAA-BBBB-CCCC");
    await p.click("button[type=submit]");
    await p.waitForSelector("[role=alert]");
    assert.match(await p.textContent("[role=alert]"), /unknown|invalid|code/i);
    await p.reload();
    await p.waitForSelector("#code");
  });

  await t.test("the enrollment page has no serious accessibility finding", async () => {
    assert.deepEqual(await axe(p), []);
  });

  await t.test("a one-time code enrolls the browser with a non-extractable key", async () => {
    const code = server.enroll("agency", "kantor-kota");
    await p.fill("#code", code.toLowerCase());
    await p.click("button[type=submit]");
    await p.waitForSelector(`#queue tr[data-id="${id}"]`);
    const key = await p.evaluate(
      () =>
        new Promise((ok, fail) => {
          const r = indexedDB.open("sambung-console");
          r.onsuccess = () => {
            const g = r.result.transaction("identity").objectStore("identity").get("current");
            g.onsuccess = () => ok({ alg: g.result.keys.privateKey.algorithm.name, extractable: g.result.keys.privateKey.extractable, account: g.result.account });
            g.onerror = () => fail(g.error);
          };
        }),
    );
    assert.deepEqual(key, { alg: "Ed25519", extractable: false, account: "kantor-kota" });
    // The code is spent: it cannot enroll a second browser.
    const other = await page(chrome);
    await other.goto(`${server.url}/console/`);
    await other.fill("#code", code);
    await other.click("button[type=submit]");
    await other.waitForSelector("[role=alert]");
    await other.context().close();
  });

  await t.test("the queue lists the complaint, counts by status and filters", async () => {
    const row = p.locator(`#queue tr[data-id="${id}"]`);
    assert.match(await row.textContent(), /diajukan/);
    await p.waitForSelector("#counts");
    assert.match(await p.textContent("#counts [data-status=submitted]"), /2/);
    assert.match(await p.textContent("#counts [data-status=approved]"), /0/);
    await p.screenshot({ path: join(SHOTS, "queue.png"), fullPage: true });
    assert.deepEqual(await axe(p), []);
    await p.selectOption("select[name=status]", "approved");
    await p.click(".filters button[type=submit]");
    await p.waitForSelector("text=Tidak ada permohonan.");
    assert.match(p.url(), /status=approved/);
    await p.selectOption("select[name=status]", "submitted");
    await p.fill("input[name=region]", "32.73.01");
    await p.click(".filters button[type=submit]");
    await p.waitForSelector(`#queue tr[data-id="${id}"]`);
    assert.equal(await p.locator("#queue tbody tr").count(), 1);
    await p.fill("input[name=region]", "32.73");
    await p.click(".filters button[type=submit]");
    await p.waitForSelector(`#queue tr[data-id="${second}"]`);
    // By service (the catalog's names), and overdue (nothing is, yet).
    await p.goto(`${server.url}/console/#/`);
    await p.waitForSelector(`#queue tr[data-id="${id}"]`);
    await p.waitForSelector("select[name=definition] option[value=complaint]", { state: "attached" });
    await p.selectOption("select[name=definition]", "complaint");
    await p.click(".filters button[type=submit]");
    await p.waitForURL(/definition=complaint/);
    await p.waitForSelector(`#queue tr[data-id="${second}"]`);
    assert.match(await p.textContent(`#queue tr[data-id="${id}"]`), /Pengaduan/);
    await p.check("input[name=overdue]");
    await p.click(".filters button[type=submit]");
    await p.waitForSelector("text=Tidak ada permohonan.");
    await p.uncheck("input[name=overdue]");
    await p.fill("input[name=region]", "bad region");
    await p.click(".filters button[type=submit]");
    assert.match(await p.locator("[role=alert]").textContent(), /region/i);
  });

  await t.test("the CSV export holds the list as shown", async () => {
    await p.goto(`${server.url}/console/#/?region=32.73`);
    await p.waitForSelector(`#queue tr[data-id="${second}"]`);
    const shown = await p.locator("#queue tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.id));
    assert.equal(shown.length, 2);
    const [file] = await Promise.all([p.waitForEvent("download"), p.click("#export")]);
    const csv = await readFile(await file.path(), "utf8");
    const lines = csv.trim().split("\r\n");
    assert.equal(lines[0], "id,kind,service,status,region,assignee,updated_at");
    assert.deepEqual(lines.slice(1).map((l) => l.split(",")[0]), shown);
    assert.match(file.suggestedFilename(), /^permohonan-\d{4}-\d{2}-\d{2}\.csv$/);
    // (That the export is in the audit trail is tested in tests/tests/backoffice.rs.)
  });

  await t.test("the map plots both complaints over the coastline, each a link", async () => {
    await p.click("#to-map");
    await p.waitForSelector("#map");
    assert.equal(await p.textContent("#plotted"), "2");
    // Fitted around two points in Bandung: Java's coast is drawn, and the
    // region's outline the deployment installed.
    assert.ok((await p.locator("#map path.land").count()) >= 1);
    assert.equal(await p.locator("#map path.boundary").count(), 1);
    assert.equal(await p.textContent("#map path.boundary title"), "Kota Bandung");
    assert.equal(await p.locator("#map a[data-id]").count(), 2);
    await p.screenshot({ path: join(SHOTS, "map.png"), fullPage: true });
    assert.deepEqual(await axe(p), []);
    await p.click(`#map a[data-id="${id}"]`);
    await p.waitForSelector("#status");
    assert.match(p.url(), new RegExp(`#/r/${id}$`));
  });

  await t.test("the request shows its fields, history and photo", async () => {
    await p.goto(`${server.url}/console/#/r/${id}`);
    await p.waitForSelector("#status");
    assert.match(await p.textContent("[data-field=text]"), /Jalan berlubang/);
    // Labelled by the service's definition in the catalog, options by their words.
    await p.waitForSelector("[data-field=service]");
    assert.match(await p.textContent("[data-field=text] dt"), /Isi pengaduan/);
    assert.match(await p.textContent("[data-field=category] dd"), /Infrastruktur/);
    assert.match(await p.textContent("[data-field=anonymous] dd"), /Tidak/);
    // Its trail: the resident's phone delivered it; this browser read it.
    await p.click(".trail summary");
    await p.waitForSelector("#receipts li");
    assert.match(await p.textContent("#receipts"), /warga-1/);
    await p.waitForSelector("#audit li");
    assert.match(await p.textContent("#audit"), /kantor-kota · read/);
    assert.match(await p.textContent("#history"), /draf → diajukan/);
    const img = p.locator("img.photo");
    await img.waitFor();
    await p.waitForFunction(() => document.querySelector("img.photo")?.naturalWidth > 0);
    // The phone prepared the photo for the link: re-encoded as JPEG.
    assert.equal(await img.getAttribute("alt"), "jalan-berlubang.jpg");
    await p.screenshot({ path: join(SHOTS, "request.png"), fullPage: true });
    assert.deepEqual(await axe(p), []);
  });

  await t.test("a big photo arrives in signed ranges and is shown whole", async () => {
    await p.goto(`${server.url}/console/#/r/${second}`);
    await p.waitForFunction(() => document.querySelector("img.photo")?.naturalWidth === 800, null, { timeout: 20_000 });
    const ranges = await p.evaluate(
      () => performance.getEntriesByType("resource").filter((e) => e.name.includes("/attachments/")).length,
    );
    assert.ok(ranges >= 3, `${ranges} downloads for 1.4 MB in 512 KiB ranges`);
    // The PDF is saved under its name for the office's PDF reader, whole.
    const pdf = p.locator("figure", { hasText: "surat-rt.pdf" });
    const [saved] = await Promise.all([p.waitForEvent("download"), pdf.locator("button").click()]);
    assert.equal(saved.suggestedFilename(), "surat-rt.pdf");
    assert.match(await readFile(await saved.path(), "utf8"), /^%PDF-1\.4\n[\s\S]*%%EOF\n$/);
    await p.goto(`${server.url}/console/#/r/${id}`);
    await p.waitForSelector("#status");
  });

  const question = "Mohon kirim foto dari jarak lebih dekat.";
  await t.test("the officer receives, reviews and asks for information", async () => {
    await p.click("button.to.received");
    await p.waitForSelector("#status:text('diterima')");
    await p.click("button.to.in_review");
    await p.waitForSelector("#status:text('diperiksa')");
    await p.fill("#message", question);
    await p.click("button.to.needs_info");
    await p.waitForSelector("#status:text('perlu informasi')");
  });

  await t.test("the complaint is assigned to a field officer of its region", async () => {
    const officer = resident(server, "petugas-1", ["32.73"]);
    resident(server, "petugas-jauh", ["33.01"]);
    await p.reload();
    await p.waitForSelector("#officer option[value='petugas-1']", { state: "attached" });
    // Only officers of the request's region are offered.
    assert.equal(await p.locator("#officer option[value='petugas-jauh']").count(), 0);
    await p.selectOption("#officer", "petugas-1");
    await p.click("#assign-form button[type=submit]");
    await p.waitForSelector("text=Petugas: petugas-1");
    officer.sync();
    assert.equal(officer.show(id).assignee, "petugas-1");
  });

  const answer = "Sudah saya foto ulang dari dekat, lubangnya sekitar 1 meter.";
  await t.test("the resident's phone gets the question and answers", async () => {
    phone.sync();
    const seen = phone.show(id);
    const last = seen.history.at(-1);
    assert.equal(last.to, "needs_info");
    assert.equal(last.note, question);
    phone.run(["note", id, answer, "--answer"]);
    phone.sync();
  });

  await t.test("the console shows the answer", async () => {
    await p.reload();
    await p.waitForSelector("#status:text('diperiksa')");
    assert.match(await p.textContent("#notes"), /lubangnya sekitar 1 meter/);
  });

  await t.test("a stale write shows what changed and overwrites nothing", async () => {
    // The page holds the version it loaded; the resident writes meanwhile.
    phone.run(["note", id, "Ada juga genangan air di sebelahnya."]);
    phone.sync();
    await p.fill("#note", "Petugas lapangan dijadwalkan Kamis.");
    await p.click("#note-form button[type=submit]");
    await p.waitForSelector("#changed");
    assert.match(await p.textContent("[role=alert]"), /berubah/);
    assert.match(await p.textContent("#changed"), /notes/);
    const notes = await p.textContent("#notes");
    assert.match(notes, /genangan air/);
    assert.doesNotMatch(notes, /dijadwalkan Kamis/);
    // Acting again, on the version now shown, is taken.
    await p.click("#note-form button[type=submit]");
    await p.waitForSelector("#notes:has-text('dijadwalkan Kamis')");
  });

  await t.test("approval with the keyboard alone", async () => {
    await p.reload();
    await p.waitForSelector("#status:text('diperiksa')");
    await tabTo(p, "#message");
    await p.keyboard.type("Lokasi sudah diverifikasi; perbaikan dijadwalkan.");
    await tabTo(p, "button.to.approved");
    await p.keyboard.press("Enter");
    await p.waitForSelector("#status:text('disetujui')");
    phone.sync();
    const seen = phone.show(id);
    assert.equal(seen.history.at(-1).to, "approved");
    assert.equal(seen.history.at(-1).by, "kantor-kota");
  });

  await t.test("English on request, in the region's time zone", async () => {
    await p.click("header button[lang=en]");
    await p.waitForSelector("#status:text('approved')");
    assert.equal(await p.getAttribute("html", "lang"), "en");
    assert.match(await p.textContent("#history"), /WIB/);
    await p.click("header button[lang=id]");
    await p.waitForSelector("#status:text('disetujui')");
  });

  await t.test("administration: keys, webhooks, a person's data", async () => {
    await p.click("header a[href='#/admin']");
    await p.waitForSelector("#devices");
    const keys = await p.textContent("#devices");
    assert.match(keys, /warga-1/);
    assert.match(keys, /kantor-kota/);
    // This browser's own key is marked, not offered for revocation.
    assert.match(await p.textContent(`#devices tr:has-text("kantor-kota")`), /peramban ini/);
    assert.equal(await p.locator(`#devices tr:has-text("kantor-kota") button`).count(), 0);
    assert.deepEqual(await axe(p), []);
    await p.screenshot({ path: join(SHOTS, "admin.png"), fullPage: true });

    // A webhook: the secret is shown once; a loopback address is refused.
    await p.fill("#webhook-url", "http://127.0.0.1/hook");
    await p.click("#webhook-form button[type=submit]");
    await p.waitForSelector("section[aria-labelledby=hooks-title] [role=alert]");
    await p.fill("#webhook-url", "https://sistem.dinas.example.go.id/sambung");
    await p.click("#webhook-form button[type=submit]");
    await p.waitForSelector("#webhook-secret");
    assert.match(await p.textContent("#webhooks"), /sistem\.dinas\.example\.go\.id/);
    assert.match(await p.textContent("#webhooks"), /terkirim: 0 · menunggu: 0 · gagal: 0/);
    await p.click("#webhooks li button");
    await p.waitForFunction(() => document.querySelectorAll("#webhooks li").length === 0);

    // A person's copy holds both complaints; erasure empties them.
    const nik = JSON.parse(complaint).applicant.nik;
    await p.fill("#nik", nik);
    const [file] = await Promise.all([p.waitForEvent("download"), p.click("#person-export")]);
    const copy = JSON.parse(await readFile(await file.path(), "utf8"));
    assert.deepEqual(copy.requests.map((r) => r.id).sort(), [id, second].sort());
    p.once("dialog", (d) => d.accept(nik));
    await p.click("#person-erase");
    await p.waitForSelector("#person-result:has-text('Dihapus: 2')");

    // The resident's phone, revoked from here, is refused at its next sync.
    p.once("dialog", (d) => d.accept());
    await p.click(`#devices tr:has-text("warga-1") button.revoke`);
    await p.waitForSelector(`#devices tr:has-text("warga-1"):has-text("Dicabut")`);
    assert.throws(() => phone.sync(), /revoked|dicabut/i);
  });

  await t.test("an officer's key is told the console is the agency's", async () => {
    const other = await page(chrome);
    await other.goto(`${server.url}/console/`);
    await other.fill("#code", server.enroll("officer", "petugas-2", ["32.73"]));
    await other.click("button[type=submit]");
    await other.waitForSelector("[role=alert]");
    assert.match(await other.textContent("[role=alert]"), /untuk akun agensi/);
    assert.deepEqual(unexpected(other), []);
    await other.context().close();
  });

  await t.test("a revoked browser is locked out at its next call; sign-out forgets the key", async () => {
    const line = sambung(["admin", "devices", "--data", server.data, "--user", "kantor-kota"]);
    const device = line.split(/\s+/)[0];
    assert.match(device, /^[0-9a-f]{32}$/);
    sambung(["admin", "revoke", "--data", server.data, "--device", device]);
    await p.reload();
    await p.waitForSelector("#locked-out");
    await p.click("text=Keluar");
    await p.waitForSelector("#code");
    await p.reload();
    await p.waitForSelector("#code");
  });

  assert.deepEqual(unexpected(p), [], "the page logged errors (a CSP violation among them?)");
});
