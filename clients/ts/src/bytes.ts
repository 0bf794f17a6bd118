// Byte helpers: hex and base64 exactly as docs/wire.md#conventions defines them.
import { CleanroomError } from "./errors.js";

export const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** Lowercase or uppercase hex of an exact length (`bytes` is the length in bytes, if given). */
export function fromHex(s: string, field: string, bytes?: number): Uint8Array {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new CleanroomError("bad_message", `${field}: not hex`);
  }
  if (bytes !== undefined && s.length !== bytes * 2) {
    throw new CleanroomError("bad_message", `${field}: expected ${bytes} bytes of hex, got ${s.length / 2}`);
  }
  return new Uint8Array(Buffer.from(s, "hex"));
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict RFC 4648 section 4 base64: `+/`, padded, no whitespace (Buffer alone is lenient). */
export function fromB64(s: unknown, field: string): Uint8Array {
  if (typeof s !== "string" || !B64.test(s)) {
    throw new CleanroomError("bad_message", `${field}: not base64`);
  }
  const out = new Uint8Array(Buffer.from(s, "base64"));
  // Non-zero unused bits in the last group would make two strings one value.
  if (Buffer.from(out).toString("base64") !== s) {
    throw new CleanroomError("bad_message", `${field}: not canonical base64`);
  }
  return out;
}

export function toB64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export function u64be(n: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

export function decodeUtf8(b: Uint8Array, field: string): string {
  try {
    return utf8Strict.decode(b);
  } catch {
    throw new CleanroomError("bad_message", `${field}: invalid UTF-8`);
  }
}
