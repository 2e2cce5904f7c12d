// The browser's own key, enrolled like a phone's (docs/backoffice.md,
// "Authentication"): a non-extractable Ed25519 key made by WebCrypto, kept
// in IndexedDB (a CryptoKey is stored as an object; its private half can
// never be read out, not even by this code), signing every call.

/** Who this browser is, once enrolled. */
export interface Identity {
  account: string;
  role: string;
  regions: string[];
  /** The deployment's identity (32 hex digits), signed into every call. */
  audience: string;
  /** First 16 bytes of the public key's SHA-256, hex. */
  device: string;
  keys: CryptoKeyPair;
}

const DB = "sambung-console";
const STORE = "identity";
const KEY = "current";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, run: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = run(t.objectStore(STORE));
      t.oncomplete = () => resolve(req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

/** The enrolled identity, if this browser has one. */
export async function load(): Promise<Identity | undefined> {
  return (await tx<Identity | undefined>("readonly", (s) => s.get(KEY))) ?? undefined;
}

/** Sign-out: the key is forgotten; enrolling again needs a new code. */
export async function forget(): Promise<void> {
  await tx("readwrite", (s) => s.delete(KEY));
}

export function hex(bytes: ArrayBuffer | Uint8Array): string {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const text = new TextEncoder();

async function sha256(data: BufferSource): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/** A code as typed or read aloud: dashes, spaces and case do not matter. */
export function normaliseCode(code: string): string {
  return code.replace(/[-\s]/g, "").toUpperCase();
}

/** Why enrollment failed, in words the page shows. */
export class EnrollError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Redeems a one-time code: makes the key, proves it holds it, and keeps
 * it. Nothing is kept unless the server took the code.
 */
export async function enroll(code: string): Promise<Identity> {
  if (!("subtle" in crypto)) {
    throw new EnrollError("insecure", "WebCrypto needs HTTPS (or localhost)");
  }
  let keys: CryptoKeyPair;
  try {
    keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  } catch {
    throw new EnrollError("no_ed25519", "this browser cannot make Ed25519 keys");
  }
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keys.publicKey));
  const device = hex((await sha256(publicKey)).slice(0, 16));
  const normal = normaliseCode(code);
  const proof = await crypto.subtle.sign(
    "Ed25519",
    keys.privateKey,
    text.encode(`sambung-enroll-v1\n${normal}\n${device}`),
  );
  const res = await fetch("/v1/enroll", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code: normal, device, public_key: hex(publicKey), proof: hex(proof) }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    throw new EnrollError(String(body.code ?? res.status), String(body.message ?? res.statusText));
  }
  const identity: Identity = {
    account: body.account,
    role: body.role,
    regions: body.regions ?? [],
    audience: body.audience,
    device,
    keys,
  };
  await tx("readwrite", (s) => s.put(identity, KEY));
  return identity;
}

/** Headers whose values the signature covers, in the signed order. */
const SIGNED_HEADERS = ["upload-offset", "upload-length", "range"] as const;

/**
 * The `sambung-auth` value for one call: the path with its query as
 * sent, the body's bytes, and the signed headers it carries.
 */
export async function sign(
  id: Identity,
  method: string,
  pathAndQuery: string,
  body: Uint8Array<ArrayBuffer>,
  headers: Headers,
): Promise<string> {
  const seconds = Math.floor(Date.now() / 1000);
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const lines = [
    "sambung-v2",
    id.audience,
    method.toUpperCase(),
    pathAndQuery,
    id.device,
    String(seconds),
    hex(nonce),
    hex(await sha256(body)),
    ...SIGNED_HEADERS.map((h) => headers.get(h) ?? ""),
  ];
  const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", id.keys.privateKey, text.encode(lines.join("\n"))));
  const out = new Uint8Array(16 + 8 + 16 + 64);
  out.set(unhex(id.device), 0);
  new DataView(out.buffer).setBigInt64(16, BigInt(seconds));
  out.set(nonce, 24);
  out.set(sig, 40);
  return base64url(out);
}
