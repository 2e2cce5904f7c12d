// What the browser tests stand on: a real `sambung server` on loopback
// (its own data folder), the `sambung` CLI for the administrator and for
// a resident's phone, and Debian's Chromium driven by playwright-core.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { deflateSync, crc32 } from "node:zlib";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = process.env.SAMBUNG_BIN ?? join(ROOT, "target/debug/sambung");
/** Where screenshots land (CI keeps target/ as artifacts). */
export const SHOTS = join(ROOT, "target/console");
const PASS = "kata-sandi-uji-konsol";

/** Runs the CLI; throws with its output unless it exits 0. */
export function sambung(args, { stdin, home } = {}) {
  const full = home ? ["device", "--home", home, ...args] : args;
  const r = spawnSync(BIN, full, {
    input: stdin ?? "",
    encoding: "utf8",
    env: { ...process.env, SAMBUNG_PASSPHRASE: PASS, RUST_LOG: "warn" },
  });
  if (r.status !== 0) {
    throw new Error(`sambung ${full.join(" ")} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout.trim();
}

/**
 * A server on a free loopback port with its own data (or `data`, a folder
 * already filled, which is kept); `stop()` ends it.
 */
export async function startServer({ data: given, args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "sambung-console-"));
  const data = given ?? join(dir, "srv");
  const child = spawn(
    BIN,
    ["server", "--data", data, "--listen", "127.0.0.1:0", "--limit-per-address", "1000000", "--limit-per-device", "1000000", ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "warn" } },
  );
  const url = await new Promise((ok, fail) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error(`the server did not start: ${out}`)), 30_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    child.on("exit", (code) => fail(new Error(`the server exited ${code}: ${out}`)));
  });
  return {
    url,
    data,
    dir,
    /** An enrollment code for a new account. */
    enroll(role, user, regions = []) {
      return sambung(["admin", "enroll", "--data", data, "--role", role, "--user", user, ...regions.flatMap((r) => ["--region", r])]);
    },
    async stop() {
      child.kill();
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A resident's phone (or an officer's, with `regions`), enrolled at `server`: a CLI home of its own. */
export function resident(server, user, regions) {
  const home = join(server.dir, user);
  const code = server.enroll(regions ? "officer" : "resident", user, regions ?? []);
  sambung(["init"], { home });
  sambung(["enroll", "--server", server.url, "--code", code], { home });
  const run = (args, stdin) => sambung(args, { home, stdin });
  return {
    home,
    run,
    /** The request as the phone holds it. */
    show: (id) => JSON.parse(run(["show", id, "--json"])),
    sync: () => run(["sync"]),
  };
}

/**
 * A real PNG photo (`w`×`h`, a drawn pothole), so the phone prepares it as
 * it would a camera's; `noisy`: grain that does not compress (a big file).
 */
export function photo(path, w = 320, h = 240, noisy = false) {
  let seed = 7;
  const grain = () => (noisy ? ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24) % 60 : 0);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const i = y * (w * 3 + 1) + 1 + x * 3;
      const hole = (x - w / 2) ** 2 / (w / 4) ** 2 + (y - h / 2) ** 2 / (h / 5) ** 2 < 1;
      const grey = hole ? 40 + ((x * 7 + y * 13) % 30) : 120 + ((x * 3 + y * 5) % 40);
      raw[i] = grey + grain();
      raw[i + 1] = grey + grain();
      raw[i + 2] = (hole ? grey : grey + 10) + grain();
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  writeFileSync(
    path,
    Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", ihdr),
      chunk("IDAT", deflateSync(raw)),
      chunk("IEND", Buffer.alloc(0)),
    ]),
  );
}

/** Debian's Chromium, headless, with no network of its own beyond loopback. */
export async function browser() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: process.env.SAMBUNG_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A page that records every console error (a CSP violation among them). */
export async function page(b) {
  const context = await b.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await context.newPage();
  p.errors = [];
  p.on("console", (m) => m.type() === "error" && p.errors.push(m.text()));
  p.on("pageerror", (e) => p.errors.push(`${e} ${e.stack}`));
  return p;
}

/** axe-core's serious and critical findings on the page as it stands. */
export async function axe(p) {
  const source = await import("node:fs").then((fs) => fs.readFileSync(join(ROOT, "console/node_modules/axe-core/axe.min.js"), "utf8"));
  // Evaluated through the DevTools protocol, as a test tool's script: the
  // page's CSP (rightly) forbids adding it as a script element.
  await p.evaluate(source);
  const result = await p.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}
