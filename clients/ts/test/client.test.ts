// The requests this client builds, for each of the three forms, against the vectors' requests
// and the params their results carry.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { TrustStore } from "../src/audit.js";
import { PartyClient, QuerySpec } from "../src/client.js";
import { Host } from "../src/http.js";
import { generateKeys, loadKeys, PartyKeys, saveKeys } from "../src/keys.js";
import { canonicalEncode, Value, ValueMap } from "../src/msgpack.js";
import { parsePolicy } from "../src/policy.js";
import { DEFAULT_VERIFIER } from "../src/quote.js";
import { fromJson, hex, toHexStr, vector } from "./helpers.js";

const advertiser = vector("keys").parties.advertiser;
const keys: PartyKeys = {
  party: "advertiser", seed: hex(advertiser.ed25519_seed), resultPrivate: hex(advertiser.x25519_private),
  signingPublic: hex(advertiser.ed25519_public), resultPublic: hex(advertiser.x25519_public),
};

function client(policyText: string): PartyClient {
  return new PartyClient(new Host("http://127.0.0.1:9"), parsePolicy(new TextEncoder().encode(policyText)), DEFAULT_VERIFIER, new TrustStore(mkdtempSync(join(tmpdir(), "trust-"))));
}

function same(a: Value | undefined, b: Value | undefined, what: string): void {
  assert.equal(toHexStr(canonicalEncode(a ?? null)), toHexStr(canonicalEncode(b ?? null)), what);
}

function check(c: PartyClient, spec: QuerySpec, request: { document: unknown }, resultParams: unknown): void {
  const { doc, params } = c.buildRequest(keys, spec);
  const want = fromJson(request.document) as ValueMap;
  for (const k of Object.keys(want)) if (k !== "nonce" && k !== "issued_at") same(doc[k], want[k], `request ${k}`);
  assert.deepEqual(Object.keys(doc).sort(), Object.keys(want).sort());
  same(params, fromJson(resultParams), "the result's params");
}

test("client requests: a named analysis, a template and a plan, as the vectors sign them", () => {
  const req = vector("requests").query_request;
  check(client(vector("policy").text), { kind: "analysis", id: "overlap", params: fromJson(req.document.params) as ValueMap }, req, vector("result").document.params);
  const t = vector("template");
  check(client(t.policy.text), { kind: "template", id: t.query_request.document.analysis, args: t.query_request.document.params }, t.query_request, t.result.document.params);
  const w = vector("witness");
  check(client(w.policy.text), { kind: "plan", plan: fromJson(w.query_request.document.plan), sql: w.query_request.document.sql }, w.query_request, w.result.document.params);
  // A named analysis without group_by is read as group_by [].
  assert.deepEqual(client(vector("policy").text).buildRequest(keys, { kind: "analysis", id: "overlap", params: {} }).params, { group_by: [] });
});

test("keys: saved in the Python client's layout and loaded back; never overwritten", () => {
  const dir = mkdtempSync(join(tmpdir(), "keys-"));
  const k = generateKeys("advertiser");
  const { secret, pub } = saveKeys(k, dir);
  const loaded = loadKeys(secret);
  assert.deepEqual([loaded.party, toHexStr(loaded.signingPublic), toHexStr(loaded.resultPublic)], ["advertiser", toHexStr(k.signingPublic), toHexStr(k.resultPublic)]);
  assert.deepEqual(JSON.parse(readFileSync(pub, "utf8")), { format: 1, party: "advertiser", signing_key: toHexStr(k.signingPublic), result_key: toHexStr(k.resultPublic) });
  assert.equal(statSync(secret).mode & 0o777, 0o600);
  assert.throws(() => saveKeys(k, dir), { code: "usage" });
  assert.throws(() => loadKeys(join(dir, "missing.json")), { code: "usage" });
});
