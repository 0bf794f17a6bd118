// upload.json: data key wrap, header, batches, chunk nonce/AAD/ciphertext, records, digest.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Table, encodeBatch } from "../src/batch.js";
import { concat, u32be } from "../src/bytes.js";
import { aesGcmOpen, aesGcmSeal, hpkeOpen, hpkeSeal, sha256, uploadKeyInfo, verifySignature } from "../src/crypto.js";
import { parseDocument } from "../src/documents.js";
import { canonicalEncode, ValueMap } from "../src/msgpack.js";
import { parsePolicy, schemaOf, SchemaKind } from "../src/policy.js";
import { checkReceipt, chunkAad, chunkNonce, headRecord, PreparedUpload, uploadDigest } from "../src/upload.js";
import { fromJson, hex, toHexStr, vector } from "./helpers.js";

const u = vector("upload");
const policy = parsePolicy(new TextEncoder().encode(vector("policy").text));
const parties = vector("keys").parties;

function tableOf(schema: [string, SchemaKind][], b: { rows: number; columns: Record<string, (string | number)[]> }): Table {
  return {
    kinds: schema.map(([, k]) => k), rows: b.rows,
    ids: concat(...(b.columns.id as string[]).map(hex)),
    values: schema.slice(1).map(([name]) => b.columns[name] as number[]),
  };
}

test("upload: the data key wrap opens, its info is the canonical array, and our seal opens with the vector key", async () => {
  for (const up of u.uploads) {
    const w = up.data_key_wrap;
    assert.equal(toHexStr(uploadKeyInfo(policy.collaborationId, policy.hash, up.party, up.dataset)), w.info);
    const sealed = concat(hex(w.enc), hex(w.ciphertext));
    assert.equal(toHexStr(await hpkeOpen(hex(w.recipient_private), hex(w.info), sealed, "wrap")), w.plaintext);
    const ours = await hpkeSeal(hex(w.recipient_public), hex(w.info), hex(w.plaintext));
    assert.equal(ours.length, 80);
    assert.equal(toHexStr(await hpkeOpen(hex(w.recipient_private), hex(w.info), ours, "ours")), w.plaintext);
    await assert.rejects(hpkeOpen(hex(w.recipient_private), hex(w.info).subarray(1), sealed, "wrong info"), { code: "decrypt_failed" });
    assert.deepEqual(up.header.document.hpke_enc.$bytes, toHexStr(sealed));
  }
});

test("upload: header bytes, schema from the policy, and the party's signature", () => {
  for (const up of u.uploads) {
    const h = up.header;
    assert.equal(toHexStr(canonicalEncode(fromJson(h.document))), h.bytes);
    parseDocument("upload_header", hex(h.bytes));
    assert.deepEqual(schemaOf(policy.datasets.get(up.dataset)!), up.schema);
    assert.deepEqual(h.document.schema, up.schema);
    assert.ok(verifySignature(hex(parties[up.party].ed25519_public), "upload_header", hex(h.bytes), hex(h.signature)));
  }
});

test("upload: batches, chunk nonces, AAD, ciphertexts, records and the stream, byte for byte", () => {
  for (const up of u.uploads) {
    const headerBytes = hex(up.header.bytes);
    const key = hex(up.data_key);
    assert.equal(up.batches.length, up.chunks.length);
    up.batches.forEach((b: { rows: number; columns: Record<string, (string | number)[]>; bytes: string }, i: number) => {
      const t = tableOf(up.schema, b);
      assert.equal(toHexStr(encodeBatch(t, 0, b.rows)), b.bytes, `batch ${i}`);
    });
    const hashes: Uint8Array[] = [];
    let stream = headRecord(headerBytes, hex(up.header.signature));
    assert.equal(toHexStr(stream), up.head_record);
    up.chunks.forEach((c: { index: number; last: boolean; nonce: string; aad: string; ciphertext: string; record: string }, i: number) => {
      assert.equal(c.index, i);
      assert.equal(c.last, i === up.chunks.length - 1);
      assert.equal(toHexStr(chunkNonce(i)), c.nonce);
      assert.equal(toHexStr(chunkAad(headerBytes, i, c.last)), c.aad);
      const ct = aesGcmSeal(key, chunkNonce(i), hex(up.batches[i].bytes), hex(c.aad));
      assert.equal(toHexStr(ct), c.ciphertext);
      assert.equal(toHexStr(aesGcmOpen(key, hex(c.nonce), hex(c.ciphertext), hex(c.aad))), up.batches[i].bytes);
      assert.throws(() => aesGcmOpen(key, hex(c.nonce), hex(c.ciphertext), chunkAad(headerBytes, i, !c.last)), { code: "decrypt_failed" });
      const payload = concat(new Uint8Array([c.last ? 1 : 0]), ct);
      assert.equal(toHexStr(concat(u32be(payload.length), payload)), c.record);
      hashes.push(sha256(payload));
      stream = concat(stream, hex(c.record));
    });
    assert.equal(toHexStr(stream), up.record_stream);
    assert.equal(toHexStr(uploadDigest(headerBytes, hex(up.header.signature), hashes)), up.digest);
  }
});

test("upload: the receipts check against the uploads they answer, and an edit is refused", () => {
  const receipts = vector("receipts").upload_receipts;
  u.uploads.forEach((up: { header: { document: unknown; bytes: string }; digest: string; batches: { rows: number }[] }, i: number) => {
    const header = fromJson(up.header.document) as ValueMap;
    const prepared = {
      header, headerBytes: hex(up.header.bytes), uploadId: header.upload_id as Uint8Array,
      idempotencyKey: header.idempotency_key as Uint8Array, digest: () => hex(up.digest),
    } as unknown as PreparedUpload;
    const rows = up.batches.reduce((n, b) => n + b.rows, 0);
    const doc = parseDocument("upload_receipt", hex(receipts[i].bytes));
    assert.deepEqual(checkReceipt(doc, policy, prepared, rows), { retry: false });
    assert.throws(() => checkReceipt(doc, policy, prepared, rows + 1), /rows/);
    assert.throws(() => checkReceipt({ ...doc, digest: new Uint8Array(32) }, policy, prepared, rows), /digest/);
    assert.throws(() => checkReceipt({ ...doc, skipped: { id: 9 } }, policy, prepared, rows), /skipped/);
    assert.throws(() => checkReceipt({ ...doc, dataset: "other" }, policy, prepared, rows), /dataset/);
    // A retry answered with the earlier upload of the same idempotency key.
    assert.deepEqual(checkReceipt({ ...doc, upload_id: new Uint8Array(16) }, policy, prepared, rows), { retry: true });
  });
});
