// Shared by the tests: the vector files, JSON values back to msgpack values, paths.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Value } from "../src/msgpack.js";

/** clients/ts, found from this compiled file wherever dist/ is. */
export const PACKAGE_DIR = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json"))) d = dirname(d);
  return d;
})();

export const REPO = resolve(PACKAGE_DIR, "../..");
export const VECTORS = join(REPO, "tests", "vectors");

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function vector(name: string): any {
  return JSON.parse(readFileSync(join(VECTORS, `${name}.json`), "utf8"));
}

export const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
export const toHexStr = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** The vectors' JSON form of a decoded msgpack value (bin as {"$bytes": hex}). */
export function fromJson(v: unknown): Value {
  if (v === null || typeof v === "boolean" || typeof v === "string" || typeof v === "number") return v;
  if (Array.isArray(v)) return v.map(fromJson);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === "$bytes") return hex(o.$bytes as string);
  return Object.fromEntries(keys.map((k) => [k, fromJson(o[k])]));
}

/** Flip the last bit of a hex string. */
export function flipHex(s: string): string {
  const b = hex(s);
  b[b.length - 1] ^= 1;
  return toHexStr(b);
}

export function pythonInterpreter(): string {
  return process.env.CLEANROOM_PYTHON ?? join(REPO, ".venv", "bin", "python");
}

/** A test that needs something outside the repository: skip with a reason, but fail under CI. */
export function needs(available: boolean, what: string): string | false {
  if (available) return false;
  if (process.env.CI === "true") throw new Error(`${what} is required under CI=true`);
  return `${what} is not available`;
}
