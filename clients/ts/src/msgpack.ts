// Canonical msgpack (docs/wire.md#canonical-msgpack). Decoding uses @msgpack/msgpack; the
// encoder is our own because the library sorts map keys by UTF-16 units and lists
// integer-like object keys first, and canonical form needs neither.
import { decode, ExtData } from "@msgpack/msgpack";
import { equal } from "./bytes.js";
import { CleanroomError } from "./errors.js";
import { isWellFormed } from "./unicode.js";

export type Value = null | boolean | number | bigint | string | Uint8Array | Value[] | ValueMap;
export interface ValueMap { [key: string]: Value }

export const MAX_DEPTH = 8;
const U64_LIMIT = 1n << 64n;
const I64_MIN = -(1n << 63n);

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(b: number): void { this.ensure(1); this.buf[this.pos++] = b; }
  u16(n: number): void { this.ensure(2); this.view.setUint16(this.pos, n); this.pos += 2; }
  u32(n: number): void { this.ensure(4); this.view.setUint32(this.pos, n); this.pos += 4; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  done(): Uint8Array { return this.buf.slice(0, this.pos); }
}

/** Compare two keys by their UTF-8 bytes, which is code point order. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function writeInt(w: Writer, v: bigint): void {
  if (v < I64_MIN || v >= U64_LIMIT) throw new CleanroomError("bad_message", "integer out of the 64-bit range");
  const n = Number(v);
  if (v >= 0n) {
    if (v < 128n) w.u8(n);
    else if (v < 0x100n) { w.u8(0xcc); w.u8(n); }
    else if (v < 0x10000n) { w.u8(0xcd); w.u16(n); }
    else if (v < 0x100000000n) { w.u8(0xce); w.u32(n); }
    else { w.u8(0xcf); w.ensure(8); w.view.setBigUint64(w.pos, v); w.pos += 8; }
  } else {
    if (v >= -32n) w.u8(n & 0xff);
    else if (v >= -0x80n) { w.u8(0xd0); w.ensure(1); w.view.setInt8(w.pos, n); w.pos += 1; }
    else if (v >= -0x8000n) { w.u8(0xd1); w.ensure(2); w.view.setInt16(w.pos, n); w.pos += 2; }
    else if (v >= -0x80000000n) { w.u8(0xd2); w.ensure(4); w.view.setInt32(w.pos, n); w.pos += 4; }
    else { w.u8(0xd3); w.ensure(8); w.view.setBigInt64(w.pos, v); w.pos += 8; }
  }
}

function writeHeader(w: Writer, n: number, fix: number, fixMax: number, c8: number | null, c16: number, c32: number): void {
  if (n < fixMax) w.u8(fix + n);
  else if (c8 !== null && n < 0x100) { w.u8(c8); w.u8(n); }
  else if (n < 0x10000) { w.u8(c16); w.u16(n); }
  else { w.u8(c32); w.u32(n); }
}

function writeStr(w: Writer, s: string): void {
  if (!isWellFormed(s)) throw new CleanroomError("bad_message", "a string holds a lone surrogate");
  const b = Buffer.from(s, "utf8");
  writeHeader(w, b.length, 0xa0, 32, 0xd9, 0xda, 0xdb);
  w.bytes(b);
}

function write(w: Writer, v: Value): void {
  if (v === null) w.u8(0xc0);
  else if (v === false) w.u8(0xc2);
  else if (v === true) w.u8(0xc3);
  else if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new CleanroomError("bad_message", `not a safe integer: ${v} (no floats in canonical msgpack)`);
    writeInt(w, BigInt(v));
  } else if (typeof v === "bigint") writeInt(w, v);
  else if (typeof v === "string") writeStr(w, v);
  else if (v instanceof Uint8Array) {
    if (v.length < 0x100) { w.u8(0xc4); w.u8(v.length); }
    else if (v.length < 0x10000) { w.u8(0xc5); w.u16(v.length); }
    else { w.u8(0xc6); w.u32(v.length); }
    w.bytes(v);
  } else if (Array.isArray(v)) {
    writeHeader(w, v.length, 0x90, 16, null, 0xdc, 0xdd);
    for (const x of v) write(w, x);
  } else if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort(compareKeys);
    writeHeader(w, keys.length, 0x80, 16, null, 0xde, 0xdf);
    for (const k of keys) {
      writeStr(w, k);
      write(w, v[k]);
    }
  } else {
    throw new CleanroomError("bad_message", `cannot encode ${Object.prototype.toString.call(v)}`);
  }
}

/** The only encoding of `v`. Undefined map values are left out (an absent optional field). */
export function canonicalEncode(v: Value): Uint8Array {
  const w = new Writer();
  write(w, v);
  return w.done();
}

function strictKey(key: unknown): string {
  if (typeof key !== "string") throw new CleanroomError("bad_message", "a map key is not a str");
  return key;
}

// Plain-object maps only, bigints narrowed to numbers where exact, and no ext or float.
function normalise(v: unknown, depth: number, path: string): Value {
  if (depth > MAX_DEPTH) throw new CleanroomError("bad_message", `${path}: nested deeper than ${MAX_DEPTH}`);
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new CleanroomError("bad_message", `${path}: a float`);
    return v;
  }
  if (typeof v === "bigint") {
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  if (v instanceof ExtData || v instanceof Date) throw new CleanroomError("bad_message", `${path}: an ext value`);
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x, i) => normalise(x, depth + 1, `${path}[${i}]`));
  if (typeof v === "object") {
    const out: ValueMap = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = normalise(x, depth + 1, `${path}.${k}`);
    return out;
  }
  throw new CleanroomError("bad_message", `${path}: unexpected value`);
}

/**
 * Parse canonical msgpack, docs/wire.md#what-a-receiver-enforces steps 1-3 and 5: one value,
 * no trailing bytes, valid UTF-8, str keys, depth, no float or ext, and re-encoding gives the
 * same bytes (which refuses unsorted or repeated keys and every non-shortest header).
 */
export function decodeCanonical(bytes: Uint8Array, what: string, limit = 64 * 1024 * 1024): Value {
  if (bytes.length > limit) throw new CleanroomError("bad_message", `${what}: ${bytes.length} bytes is over the ${limit}-byte limit`);
  let raw: unknown;
  try {
    raw = decode(bytes, { useBigInt64: true, mapKeyConverter: strictKey });
  } catch (e) {
    if (e instanceof CleanroomError) throw new CleanroomError(e.code, `${what}: ${e.message}`);
    throw new CleanroomError("bad_message", `${what}: not one msgpack value (${(e as Error).message})`);
  }
  const value = normalise(raw, 0, what);
  let again: Uint8Array;
  try {
    again = canonicalEncode(value);
  } catch (e) {
    throw new CleanroomError("bad_message", `${what}: ${(e as Error).message}`);
  }
  if (!equal(again, bytes)) throw new CleanroomError("bad_message", `${what}: not in canonical form`);
  return value;
}

export function isMap(v: Value | undefined): v is ValueMap {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
