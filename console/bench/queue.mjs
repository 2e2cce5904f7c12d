// The console on a big office, measured in Chromium against a real server
// (issue 17): the queue, a filtered queue and a request page, each loaded
// fresh — time to first render and the API's latency as the browser saw it
// (resource timing) — and the CSV export of everything, at 1,000 requests
// (the baseline) and at 100,000, with the ratios. The requests are
// realistic and distinct (tests/examples/seed_requests.rs), stored on
// SQLite; each size is seeded once under target/console-bench/.
//
//   scripts/bench-console            1,000 and 100,000 requests
//   scripts/bench-console --quick    100 and 1,000, one run each (the test command)

import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { browser, page, startServer } from "../tests/harness.mjs";

const quick = process.argv.includes("--quick");
const SIZES = quick ? [100, 1000] : [1000, 100_000];
const RUNS = quick ? 1 : 7;
const ROOT = resolve(import.meta.dirname, "../..");
/** The seeded data's version (tests/examples/seed_requests.rs). */
const SEED_VERSION = "2";
const SEED = process.env.SAMBUNG_SEED_BIN ?? join(ROOT, "target/release/examples/seed_requests");

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Milliseconds from navigation to `selector` shown, and the API calls'
 * durations by path (read once `after` is shown too: calls still running
 * at first render, such as the counts).
 */
async function load(p, url, selector, after) {
  await p.goto("about:blank");
  await p.goto(url);
  await p.waitForSelector(selector);
  const render = await p.evaluate(() => performance.now());
  if (after) await p.waitForSelector(after, { timeout: 60_000 });
  const measured = await p.evaluate(() => {
    const api = {};
    for (const e of performance.getEntriesByType("resource")) {
      const u = new URL(e.name);
      if (u.pathname.startsWith("/v1/")) {
        const key = u.pathname.replace(/[0-9a-f-]{36}/, "{id}");
        api[key] = Math.max(api[key] ?? 0, e.responseEnd - e.startTime);
      }
    }
    return { api };
  });
  return { render, api: measured.api };
}

const results = {};
const chrome = await browser();
for (const n of SIZES) {
  const dir = join(ROOT, "target/console-bench", String(n));
  // Seeded again when the seeding changes (bump SEED_VERSION with it).
  const marker = join(dir, "seed-version");
  if (!existsSync(marker) || readFileSync(marker, "utf8") !== SEED_VERSION) {
    rmSync(dir, { recursive: true, force: true });
    const r = spawnSync(SEED, [dir, String(n)], { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`seeding ${n} failed`);
    writeFileSync(marker, SEED_VERSION);
  }
  const server = await startServer({ data: dir });
  try {
    const p = await page(chrome);
    await p.goto(`${server.url}/console/`);
    await p.fill("#code", server.enroll("agency", `bench-${Date.now()}`));
    await p.click("button[type=submit]");
    await p.waitForSelector("#queue tbody tr");
    const some = await p.locator("#queue tbody tr").first().getAttribute("data-id");
    const runs = { queue: [], queueApi: [], counts: [], filtered: [], filteredApi: [], request: [], requestApi: [], exportMs: [] };
    for (let k = 0; k < RUNS; k++) {
      const q = await load(p, `${server.url}/console/#/`, "#queue tbody tr", "#counts");
      runs.queue.push(q.render);
      runs.queueApi.push(q.api["/v1/agency/requests"]);
      runs.counts.push(q.api["/v1/agency/requests/counts"]);
      const f = await load(p, `${server.url}/console/#/?status=needs_info&region=32.73.01`, "#queue tbody tr, main p:text('Tidak ada permohonan.')");
      runs.filtered.push(f.render);
      runs.filteredApi.push(f.api["/v1/agency/requests"]);
      const r = await load(p, `${server.url}/console/#/r/${some}`, "[data-field=service]");
      runs.request.push(r.render);
      runs.requestApi.push(r.api["/v1/agency/requests/{id}"]);
      await p.goto(`${server.url}/console/#/`);
      await p.waitForSelector("#queue tbody tr");
      const started = Date.now();
      await Promise.all([p.waitForEvent("download", { timeout: 120_000 }), p.click("#export")]);
      runs.exportMs.push(Date.now() - started);
    }
    results[n] = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
    await p.context().close();
  } finally {
    await server.stop();
  }
}
await chrome.close();

const [base, big] = SIZES;
const rows = [
  ["Queue: first render (ms)", "queue"],
  ["Queue: list API (ms)", "queueApi"],
  ["Queue: counts API (ms)", "counts"],
  ["Filtered queue (needs_info, one district): first render (ms)", "filtered"],
  ["Filtered queue: list API (ms)", "filteredApi"],
  ["A request: first render (ms)", "request"],
  ["A request: API (ms)", "requestApi"],
  ["CSV export of everything (ms)", "exportMs"],
];
console.log(`\n| What (median of ${RUNS}) | ${base.toLocaleString("en")} requests | ${big.toLocaleString("en")} requests | ratio |`);
console.log("|---|---|---|---|");
for (const [label, key] of rows) {
  const a = results[base][key];
  const b = results[big][key];
  console.log(`| ${label} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(2)}× |`);
}
