// requests.json, receipts.json, audit.json, keys.json, report_data.json: labels, bytes, signatures.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import { reportData } from "../src/attestation.js";
import { entryHash, GENESIS, verifyAuditLog } from "../src/audit.js";
import { toB64 } from "../src/bytes.js";
import { ed25519Public, Label, LABELS, REPORT_DATA_DOMAIN, sha256, sign, verifySignature, x25519Public } from "../src/crypto.js";
import { DocumentKind, parseDocument } from "../src/documents.js";
import { canonicalEncode } from "../src/msgpack.js";
import { fromJson, hex, toHexStr, vector } from "./helpers.js";

const keys = vector("keys");
const ENCLAVE_SIG = hex(keys.enclave.ed25519_public);

function checkSigned(v: { document: unknown; bytes: string; label: string; signature: string }, kind: DocumentKind, label: Label, pub: Uint8Array, seed?: string): void {
  const bytes = hex(v.bytes);
  assert.equal(toHexStr(LABELS[label]), v.label, `${kind}: label`);
  assert.equal(toHexStr(canonicalEncode(fromJson(v.document))), v.bytes, `${kind}: canonical bytes`);
  assert.deepEqual(parseDocument(kind, bytes), fromJson(v.document), `${kind}: parses back`);
  assert.ok(verifySignature(pub, label, bytes, hex(v.signature)), `${kind}: signature`);
  if (seed) assert.equal(toHexStr(sign(hex(seed), label, bytes)), v.signature, `${kind}: deterministic signature`);
  const other = hex(v.bytes);
  other[other.length - 1] ^= 1;
  assert.ok(!verifySignature(pub, label, other, hex(v.signature)), `${kind}: one flipped bit refuses`);
  const wrong: Label = label === "result" ? "audit_entry" : "result";
  assert.ok(!verifySignature(pub, wrong, bytes, hex(v.signature)), `${kind}: another label refuses`);
}

test("keys: public keys derive from the seeds and private keys", () => {
  for (const k of [keys.enclave, keys.parties.publisher, keys.parties.advertiser]) {
    assert.equal(toHexStr(ed25519Public(hex(k.ed25519_seed))), k.ed25519_public);
    assert.equal(toHexStr(x25519Public(hex(k.x25519_private))), k.x25519_public);
  }
});

test("report_data: SHA-512 of the domain, both keys, the policy hash and the nonce", () => {
  const r = vector("report_data");
  assert.equal(toHexStr(REPORT_DATA_DOMAIN), r.domain);
  for (const v of r.vectors) {
    assert.equal(toHexStr(reportData(hex(v.enc_pub), hex(v.sig_pub), hex(v.policy_hash), hex(v.nonce))), v.report_data);
  }
  const p = vector("policy");
  assert.equal(toHexStr(sha256(new TextEncoder().encode(p.text))), p.policy_hash);
});

test("requests: the signed query and deletion requests, their labels and ids", () => {
  const r = vector("requests");
  checkSigned(r.query_request, "query_request", "query_request", hex(r.query_request.signing_public), r.query_request.signing_seed);
  checkSigned(r.delete_request, "delete_request", "delete_request", hex(r.delete_request.signing_public), r.delete_request.signing_seed);
  assert.equal(toHexStr(sha256(hex(r.query_request.bytes))), r.query_request.request_id);
  assert.equal(toHexStr(sha256(hex(r.delete_request.bytes))), r.delete_request.request_id);
});

test("receipts: upload receipts and the deletion receipt verify with the enclave key", () => {
  const r = vector("receipts");
  assert.equal(r.upload_receipts.length, 2);
  for (const u of r.upload_receipts) checkSigned(u, "upload_receipt", "upload_receipt", ENCLAVE_SIG, keys.enclave.ed25519_seed);
  checkSigned(r.deletion_receipt, "deletion_receipt", "deletion_receipt", ENCLAVE_SIG, keys.enclave.ed25519_seed);
  assert.equal(r.deletion_receipt.document.request_id.$bytes, vector("requests").delete_request.request_id);
});

test("audit: the chain from GENESIS, each entry's hash, and the receipts' heads on it", () => {
  const a = vector("audit");
  assert.equal(toHexStr(GENESIS), a.genesis);
  for (const e of a.entries) {
    checkSigned(e, "audit_entry", "audit_entry", ENCLAVE_SIG, keys.enclave.ed25519_seed);
    assert.equal(toHexStr(entryHash(hex(e.bytes))), e.entry_hash);
    assert.equal(toHexStr(canonicalEncode({ body: hex(e.bytes), signature: hex(e.signature) })), e.signed);
  }
  const signed = a.entries.map((e: { signed: string }) => toB64(hex(e.signed)));
  const log = verifyAuditLog(signed, ENCLAVE_SIG, "wire-test-vectors-v1");
  assert.equal(log.head.seq, a.entries.length);
  assert.equal(toHexStr(log.head.hash), a.entries[a.entries.length - 1].entry_hash);
  const receipts = vector("receipts");
  for (const r of [...receipts.upload_receipts, receipts.deletion_receipt]) {
    const h = r.document.audit_head;
    assert.equal(a.entries[h.seq - 1].entry_hash, h.hash.$bytes);
  }
  // Dropping, reordering or replaying entries is refused.
  assert.throws(() => verifyAuditLog(signed.slice(1), ENCLAVE_SIG, "wire-test-vectors-v1"), { code: "rollback_detected" });
  assert.throws(() => verifyAuditLog([signed[1], signed[0], ...signed.slice(2)], ENCLAVE_SIG, "wire-test-vectors-v1"), { code: "rollback_detected" });
  assert.throws(() => verifyAuditLog(signed, hex(keys.parties.publisher.ed25519_public), "wire-test-vectors-v1"), { code: "bad_signature" });
  assert.throws(() => verifyAuditLog(signed, ENCLAVE_SIG, "another-collaboration"), { code: "bad_message" });
});

test("signatures: a non-canonical S (S + L) is refused", () => {
  const r = vector("requests").query_request;
  const sig = hex(r.signature);
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]);
  s += L;
  const bad = sig.slice();
  for (let i = 0; i < 32; i++) { bad[32 + i] = Number(s & 0xffn); s >>= 8n; }
  assert.ok(verifySignature(hex(r.signing_public), "query_request", hex(r.bytes), sig));
  assert.ok(!verifySignature(hex(r.signing_public), "query_request", hex(r.bytes), bad));
  // ZIP-215 verification, which some libraries use, refuses it too.
  let zip215: boolean;
  try {
    zip215 = ed25519.verify(bad, new Uint8Array([...LABELS.query_request, ...hex(r.bytes)]), hex(r.signing_public), { zip215: true });
  } catch {
    zip215 = false;
  }
  assert.ok(!zip215);
});
