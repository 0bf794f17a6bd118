// http.json: the JSON bodies of the routes, read as this client reads them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { verifyBundle } from "../src/attestation.js";
import { verifyAuditLog } from "../src/audit.js";
import { fromB64 } from "../src/bytes.js";
import { requireSignature, sha256 } from "../src/crypto.js";
import { parseDocument } from "../src/documents.js";
import { parsePolicy } from "../src/policy.js";
import { DEFAULT_VERIFIER } from "../src/quote.js";
import { openResult, verifySignedResult } from "../src/result.js";
import { hex, toHexStr, vector } from "./helpers.js";

test("http bodies: attestation, upload, query, results, deletion, audit and budget answers verify", async () => {
  const h = vector("http").routes;
  const keys = vector("keys");
  const enclave = hex(keys.enclave.ed25519_public);
  const policy = parsePolicy(new TextEncoder().encode(vector("policy").text));
  const a = vector("attestation");
  verifyBundle(h.attestation.response, { policy: { ...DEFAULT_VERIFIER, allowSimulation: true }, ownPolicy: policy.bytes, nonce: hex(a.nonce), now: a.now });
  const up = h.upload.response;
  requireSignature(enclave, "upload_receipt", fromB64(up.receipt, "receipt"), fromB64(up.signature, "signature"), "upload");
  const receipt = parseDocument("upload_receipt", fromB64(up.receipt, "receipt"));
  assert.equal(toHexStr(receipt.digest as Uint8Array), up.digest);
  assert.equal(toHexStr(receipt.upload_id as Uint8Array), up.upload_id);
  const q = h.query.request;
  requireSignature(hex(keys.parties.advertiser.ed25519_public), "query_request", fromB64(q.request, "request"), fromB64(q.signature, "signature"), "query");
  const queryId = sha256(fromB64(q.request, "request"));
  assert.equal(toHexStr(queryId), h.query.response.query_id);
  for (const answer of [h.query.response, h.get_result.response]) {
    for (const party of ["advertiser", "publisher"]) {
      const signed = await openResult(answer, queryId, party, hex(keys.parties[party].x25519_private), policy);
      verifySignedResult(signed, enclave, policy, party, { queryId, simulated: true });
    }
  }
  assert.ok(h.list_results.response.results.some((r: { query_id: string }) => r.query_id === toHexStr(queryId)));
  const d = h.delete.response;
  requireSignature(enclave, "deletion_receipt", fromB64(d.receipt, "receipt"), fromB64(d.signature, "signature"), "deletion");
  const del = parseDocument("deletion_receipt", fromB64(d.receipt, "receipt"));
  assert.deepEqual((del.upload_ids as Uint8Array[]).map(toHexStr), d.upload_ids);
  const log = verifyAuditLog(h.audit.response.entries, enclave, policy.collaborationId);
  const listed = h.list_uploads.response.uploads;
  for (const u of listed) {
    const e = log.entries.find((x) => x.kind === "upload_accepted" && toHexStr(x.details.upload_id as Uint8Array) === u.upload_id)!;
    assert.equal(toHexStr(e.details.digest as Uint8Array), u.digest);
    assert.equal(e.details.rows, u.rows);
  }
  const b = h.budget.response;
  requireSignature(enclave, "budget_status", fromB64(b.status, "status"), fromB64(b.signature, "signature"), "budget");
});
