// result.json, template.json, witness.json: signed results, their seals, templates and plans.
import assert from "node:assert/strict";
import { test } from "node:test";
import { concat, toB64 } from "../src/bytes.js";
import { hpkeOpen, hpkeSeal, resultInfo, sha256, sign, verifySignature } from "../src/crypto.js";
import { parseDocument } from "../src/documents.js";
import { canonicalEncode, ValueMap } from "../src/msgpack.js";
import { checkTemplateArgs, instantiate, normalisePlan } from "../src/plan.js";
import { parsePolicy } from "../src/policy.js";
import { openResult, verifySignedResult } from "../src/result.js";
import { fromJson, hex, toHexStr, vector } from "./helpers.js";

const keys = vector("keys");
const ENCLAVE = hex(keys.enclave.ed25519_public);

test("result: the signed envelope, each recipient's seal, and the checks on the document", async () => {
  const r = vector("result");
  const policy = parsePolicy(new TextEncoder().encode(vector("policy").text));
  assert.equal(toHexStr(canonicalEncode(fromJson(r.document))), r.bytes);
  assert.ok(verifySignature(ENCLAVE, "result", hex(r.bytes), hex(r.signature)));
  assert.equal(toHexStr(canonicalEncode({ body: hex(r.bytes), signature: hex(r.signature) })), r.signed);
  assert.equal(r.query_id, vector("requests").query_request.request_id);
  const queryId = hex(r.query_id);
  assert.equal(r.sealed.length, 2);
  for (const s of r.sealed) {
    assert.equal(toHexStr(resultInfo(policy.collaborationId, queryId, s.recipient)), s.info);
    const answer = { query_id: r.query_id, results: { [s.recipient]: toB64(concat(hex(s.enc), hex(s.ciphertext))) } };
    const signed = await openResult(answer, queryId, s.recipient, hex(s.recipient_private), policy);
    assert.equal(toHexStr(signed), s.plaintext);
    assert.equal(s.plaintext, r.signed);
    const doc = verifySignedResult(signed, ENCLAVE, policy, s.recipient, { queryId, requestedBy: "advertiser", params: { group_by: ["impressions.campaign"] }, simulated: true });
    assert.deepEqual(doc, fromJson(r.document));
    // Not for another party, query or collaboration.
    const other = s.recipient === "advertiser" ? "publisher" : "advertiser";
    await assert.rejects(openResult({ results: { [other]: answer.results[s.recipient] } }, queryId, other, hex(keys.parties[other].x25519_private), policy), { code: "decrypt_failed" });
    await assert.rejects(openResult(answer, sha256(queryId), s.recipient, hex(s.recipient_private), policy), { code: "decrypt_failed" });
    // Ours, sealed to the vector key, opens.
    const mine = await hpkeSeal(hex(s.recipient_public), hex(s.info), hex(s.plaintext));
    assert.equal(toHexStr(await hpkeOpen(hex(s.recipient_private), hex(s.info), mine, "ours")), s.plaintext);
    assert.throws(() => verifySignedResult(signed, hex(keys.parties.publisher.ed25519_public), policy, s.recipient, {}), { code: "bad_signature" });
    assert.throws(() => verifySignedResult(signed, ENCLAVE, policy, s.recipient, { queryId: sha256(queryId) }), /query_id/);
    assert.throws(() => verifySignedResult(signed, ENCLAVE, policy, s.recipient, { params: { group_by: [] } }), /params/);
    assert.throws(() => verifySignedResult(signed, ENCLAVE, policy, s.recipient, { simulated: false }), /simulated/);
    assert.throws(() => verifySignedResult(signed, ENCLAVE, policy, "nobody", {}), /recipients/);
  }
});

test("template: the request, the instantiated plan, and the result's params as asked", async () => {
  const t = vector("template");
  const policy = parsePolicy(new TextEncoder().encode(t.policy.text));
  assert.equal(toHexStr(policy.hash), t.policy.policy_hash);
  const req = t.query_request;
  assert.equal(toHexStr(canonicalEncode(fromJson(req.document))), req.bytes);
  assert.equal(toHexStr(sign(hex(keys.parties.advertiser.ed25519_seed), "query_request", hex(req.bytes))), req.signature);
  const template = policy.templates.get(req.document.analysis)!;
  const args = req.document.params as Record<string, string[]>;
  checkTemplateArgs(policy, template, args);
  const plan = instantiate(template, args);
  assert.equal(toHexStr(canonicalEncode(plan)), toHexStr(canonicalEncode(fromJson(t.instantiated_plan))));
  const queryId = sha256(hex(req.bytes));
  const signed = await openResult({ results: { advertiser: toB64(concat(hex(t.sealed.enc), hex(t.sealed.ciphertext))) } }, queryId, "advertiser", hex(t.sealed.recipient_private), policy);
  const doc = verifySignedResult(signed, ENCLAVE, policy, "advertiser", {
    queryId, requestedBy: "advertiser", simulated: true,
    params: { plan, sql: template.sql, template_params: args },
  });
  assert.equal(doc.kind, "plan");
  assert.equal(doc.analysis, template.id);
  const rows = doc.rows as unknown[][];
  assert.deepEqual(rows[rows.length - 1], [null, 2, "620.00"]); // the LEFT JOIN's nil-keyed last row
  // Refused on the party's machine.
  assert.throws(() => checkTemplateArgs(policy, template, { ...args, campaigns: ["winter"] }), { code: "policy_denied" });
  assert.throws(() => checkTemplateArgs(policy, template, { campaigns: args.campaigns }), { code: "bad_message" });
  assert.throws(() => checkTemplateArgs(policy, template, { ...args, by: ["impressions.campaign", "impressions.campaign"] }), { code: "policy_denied" });
});

test("witness: the plan request in normal form, the proposal, approvals, result and budget status", () => {
  const w = vector("witness");
  const policy = parsePolicy(new TextEncoder().encode(w.policy.text));
  const req = w.query_request;
  const doc = fromJson(req.document) as ValueMap;
  assert.equal(toHexStr(canonicalEncode(doc)), req.bytes);
  // The signed plan is already in normal form, so normalising it changes no byte.
  assert.equal(toHexStr(canonicalEncode(normalisePlan(doc.plan))), toHexStr(canonicalEncode(doc.plan)));
  assert.ok(verifySignature(hex(keys.parties.advertiser.ed25519_public), "query_request", hex(req.bytes), hex(req.signature)));
  const p = w.proposal;
  assert.ok(verifySignature(ENCLAVE, "charge_proposal", hex(p.bytes), hex(p.signature)));
  const proposal = parseDocument("charge_proposal", hex(p.bytes));
  assert.equal(toHexStr(proposal.query_id as Uint8Array), toHexStr(sha256(hex(req.bytes))));
  assert.equal(toHexStr(proposal.request as Uint8Array), req.bytes);
  for (const [party, sig] of Object.entries(w.approvals as Record<string, string>)) {
    assert.equal(toHexStr(sign(hex(keys.parties[party].ed25519_seed), "charge_approval", hex(p.bytes))), sig);
  }
  const r = w.result;
  assert.ok(verifySignature(ENCLAVE, "result", hex(r.bytes), hex(r.signature)));
  const signed = canonicalEncode({ body: hex(r.bytes), signature: hex(r.signature) });
  verifySignedResult(signed, ENCLAVE, policy, "advertiser", {
    queryId: sha256(hex(req.bytes)), requestedBy: "advertiser", simulated: true,
    params: { plan: normalisePlan(doc.plan), sql: doc.sql },
  });
  const b = w.budget_status;
  assert.ok(verifySignature(ENCLAVE, "budget_status", hex(b.bytes), hex(b.signature)));
  assert.deepEqual(parseDocument("budget_status", hex(b.bytes)), fromJson(b.document));
});

test("plan normal form: where and group_by present, in/not_in values sorted and deduplicated", () => {
  const plan = normalisePlan({
    v: 1, datasets: ["a", "b"], select: [{ fn: "count_distinct", arg: "person", as: "n" }],
    where: [{ column: "a.x", op: "in", values: ["\u{1F600}", "b", "\ue000", "b", "a"] }],
  });
  assert.deepEqual(plan.group_by, []);
  assert.deepEqual((plan.where as ValueMap[])[0].values, ["a", "b", "\ue000", "\u{1F600}"]);
  assert.ok(!("join" in plan) && !("window" in plan));
  assert.throws(() => normalisePlan({ v: 1, datasets: [], select: [], join: "inner" }), /join/);
  assert.throws(() => normalisePlan({ v: 1, datasets: [], select: [], having: [] }), /unknown field/);
});
