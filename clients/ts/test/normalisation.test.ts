// normalisation.json: email and exact byte-identical; phone numbers already in E.164 exactly as
// the vectors say, every other form refused by this client (see README).
import assert from "node:assert/strict";
import { test } from "node:test";
import { identifierDigest, normalise, normaliseEmail, normalisePhone, NOT_E164 } from "../src/normalise.js";
import { PHONENUMBERS_VERSION } from "../src/phone-metadata.js";
import { trimSpace } from "../src/unicode.js";
import { toHexStr, vector } from "./helpers.js";

const n = vector("normalisation");
const isE164Form = (s: string): boolean => /^\+[0-9]+$/.test(trimSpace(s.normalize("NFKC")));

test("normalisation: the vectors' versions are the ones this client is pinned to", () => {
  assert.equal(n.unicode_version, "14.0.0");
  assert.equal(n.phonenumbers_version, PHONENUMBERS_VERSION);
});

test("normalisation: every email and exact case, normalised string and SHA-256, or refused", () => {
  const cases = n.cases.filter((c: { kind: string }) => c.kind !== "phone");
  assert.ok(cases.length >= 30);
  for (const c of cases) {
    const r = normalise(c.kind, c.input);
    if ("refused" in c) assert.ok(!r.ok, `${JSON.stringify(c.input)} must be refused (${c.refused})`);
    else {
      assert.ok(r.ok, `${JSON.stringify(c.input)}: ${r.ok ? "" : r.reason}`);
      assert.equal(r.value, c.normalised, JSON.stringify(c.input));
      assert.equal(toHexStr(identifierDigest(r.value)), c.sha256);
    }
  }
});

test("normalisation: phone cases in E.164 form as the vectors say; others refused as not E.164", () => {
  const cases = n.cases.filter((c: { kind: string }) => c.kind === "phone");
  let exact = 0;
  for (const c of cases) {
    const r = normalisePhone(c.input);
    if (isE164Form(c.input)) {
      exact++;
      if ("refused" in c) assert.ok(!r.ok, JSON.stringify(c.input));
      else assert.deepEqual(r, { ok: true, value: c.normalised });
    } else {
      assert.deepEqual(r, { ok: false, reason: NOT_E164 }, JSON.stringify(c.input));
    }
    // Every normalised output is E.164, and this client gives it back unchanged, same digest.
    if (!("refused" in c)) {
      const again = normalisePhone(c.normalised);
      assert.deepEqual(again, { ok: true, value: c.normalised }, c.normalised);
      assert.equal(toHexStr(identifierDigest(c.normalised)), c.sha256);
    }
  }
  assert.ok(exact >= 1);
});

test("normalisation: E.164 numbers refused for their length, shape, code or trunk prefix", () => {
  for (const bad of ["+1234567", "+99912345678", "+4402079460958", "+444155552671", "+44207946095812345"]) {
    assert.ok(!normalisePhone(bad).ok, bad);
  }
  assert.deepEqual(normalisePhone("\u3000+447700900123 "), { ok: true, value: "+447700900123" });
});

test("normalisation: the traps of JavaScript's own case mapping", () => {
  const ok = (s: string) => { const r = normaliseEmail(s); assert.ok(r.ok, s); return r.value; };
  assert.equal(ok("STRASSE@x.de"), ok("Stra\u00dfe@x.de"));
  assert.equal(ok("\u1e9e@x"), "ss@x"); // capital sharp s folds to "ss", not to U+00DF
  assert.equal(ok("\u03a3\u03a3@x"), "\u03c3\u03c3@x"); // no final sigma
  assert.equal(ok("\u0131@x"), "\u0131@x"); // dotless i stays
  assert.equal(ok("\uab70@x"), "\u13a0@x"); // Cherokee folds to the capitals
  assert.ok(!normaliseEmail("a\u{1FAE8}@x").ok); // assigned after Unicode 14: unassigned for the rule
});
