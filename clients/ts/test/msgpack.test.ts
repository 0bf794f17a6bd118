import assert from "node:assert/strict";
import { test } from "node:test";
import { encode } from "@msgpack/msgpack";
import { parseDocument, DocumentKind } from "../src/documents.js";
import { canonicalEncode, compareKeys, decodeCanonical } from "../src/msgpack.js";
import { fromJson, hex, toHexStr, vector } from "./helpers.js";

const m = vector("msgpack");

test("msgpack values: each value has exactly the vector's encoding, and decodes back", () => {
  assert.ok(m.values.length >= 40);
  for (const v of m.values) {
    const value = fromJson(v.value);
    assert.equal(toHexStr(canonicalEncode(value)), v.bytes, v.description);
    assert.deepEqual(decodeCanonical(hex(v.bytes), v.description), value, v.description);
  }
});

test("msgpack values: with ASCII keys, @msgpack/msgpack's sortKeys encoding agrees with ours", () => {
  let compared = 0;
  for (const v of m.values) {
    const json = JSON.stringify(v.value);
    if (/[^\x00-\x7f]/.test(json) || /\\u|\$bytes|"\d+"\s*:/.test(json) || /9007199254740991|4294967296|2147483649/.test(json)) continue;
    assert.equal(toHexStr(encode(fromJson(v.value), { sortKeys: true })), v.bytes, v.description);
    compared++;
  }
  assert.ok(compared >= 20);
});

test("msgpack key order: code point order, not UTF-16 order", () => {
  const { keys_in, keys_sorted, bytes } = m.key_order;
  assert.deepEqual([...keys_in].sort(compareKeys), keys_sorted);
  assert.notDeepEqual([...keys_in].sort(), keys_sorted); // JavaScript's default sort is the trap
  const obj = Object.fromEntries(keys_in.map((k: string, i: number) => [k, i]));
  const decoded = decodeCanonical(hex(bytes), "key_order");
  assert.equal(toHexStr(canonicalEncode(obj)), bytes);
  assert.deepEqual(decoded, obj);
});

test("msgpack rejected: every document a receiver must refuse is refused with bad_message", () => {
  assert.ok(m.rejected.length >= 20);
  for (const r of m.rejected) {
    assert.throws(() => parseDocument(r.kind as DocumentKind, hex(r.bytes)), (e: { code?: string }) => e.code === r.code, r.description);
  }
});

test("msgpack accepted: documents at a limit are accepted", () => {
  for (const a of m.accepted) {
    assert.deepEqual(parseDocument(a.kind as DocumentKind, hex(a.bytes)), fromJson(a.document), a.description);
  }
});

test("msgpack encoder refuses floats, lone surrogates and unsafe integers", () => {
  assert.throws(() => canonicalEncode(1.5), /float|safe/);
  assert.throws(() => canonicalEncode("\ud800"), /surrogate/);
  assert.throws(() => canonicalEncode(2 ** 60), /safe/);
  assert.equal(toHexStr(canonicalEncode(2n ** 63n)), "cf8000000000000000");
});
