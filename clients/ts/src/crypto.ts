// Signatures, digests, HPKE and the chunk AEAD (docs/wire.md#signatures-and-domain-labels, #hpke).
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { Aes256Gcm, CipherSuite, HkdfSha256 } from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { concat, utf8 } from "./bytes.js";
import { CleanroomError } from "./errors.js";
import { canonicalEncode } from "./msgpack.js";

export { sha256, sha512 };

const label = (name: string): Uint8Array => utf8.encode(`cleanroom/v1/${name}\x00`);

export const LABELS = {
  upload_header: label("upload-header"),
  query_request: label("query-request"),
  delete_request: label("delete-request"),
  charge_approval: label("charge-approval"),
  upload_receipt: label("upload-receipt"),
  result: label("result"),
  deletion_receipt: label("deletion-receipt"),
  audit_entry: label("audit-entry"),
  charge_proposal: label("charge-proposal"),
  budget_status: label("budget-status"),
} as const;

export type Label = keyof typeof LABELS;

export const REPORT_DATA_DOMAIN = utf8.encode("cleanroom/report-data/v1");
export const UPLOAD_DIGEST_DOMAIN = utf8.encode("cleanroom/v2/upload-digest\x00");

export function random(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

export function sign(seed: Uint8Array, which: Label, bytes: Uint8Array): Uint8Array {
  return ed25519.sign(concat(LABELS[which], bytes), seed);
}

/** Strict RFC 8032 verification (S below the group order, canonical encodings). */
export function verifySignature(pub: Uint8Array, which: Label, bytes: Uint8Array, sig: Uint8Array): boolean {
  if (sig.length !== 64 || pub.length !== 32) return false;
  try {
    return ed25519.verify(sig, concat(LABELS[which], bytes), pub, { zip215: false });
  } catch {
    return false;
  }
}

export function requireSignature(pub: Uint8Array, which: Label, bytes: Uint8Array, sig: Uint8Array, what: string): void {
  if (!verifySignature(pub, which, bytes, sig)) {
    throw new CleanroomError("bad_signature", `${what}: the signature does not verify with the pinned key`);
  }
}

export function ed25519Public(seed: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(seed);
}

export function x25519Public(priv: Uint8Array): Uint8Array {
  return x25519.getPublicKey(priv);
}

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

export function uploadKeyInfo(collaborationId: string, policyHash: Uint8Array, party: string, dataset: string): Uint8Array {
  return canonicalEncode(["cleanroom/v1/upload-key", collaborationId, policyHash, party, dataset]);
}

export function resultInfo(collaborationId: string, queryId: Uint8Array, party: string): Uint8Array {
  return canonicalEncode(["cleanroom/v1/result", collaborationId, queryId, party]);
}

/** SealBase with empty AAD; the wire form is enc || ciphertext. */
export async function hpkeSeal(recipientPublic: Uint8Array, info: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  const pk = await suite.kem.importKey("raw", recipientPublic, true);
  const { enc, ct } = await suite.seal({ recipientPublicKey: pk, info }, plaintext);
  return concat(new Uint8Array(enc), new Uint8Array(ct));
}

/** OpenBase; every failure is one `decrypt_failed`, as the spec says. */
export async function hpkeOpen(recipientPrivate: Uint8Array, info: Uint8Array, sealed: Uint8Array, what: string): Promise<Uint8Array> {
  if (sealed.length < 32 + 16) throw new CleanroomError("decrypt_failed", `${what}: too short to be sealed`);
  try {
    const sk = await suite.kem.importKey("raw", recipientPrivate, false);
    const pt = await suite.open({ recipientKey: sk, enc: sealed.slice(0, 32), info }, sealed.slice(32));
    return new Uint8Array(pt);
  } catch {
    throw new CleanroomError("decrypt_failed", `${what}: did not open (tampered, or not for this party, collaboration or query)`);
  }
}

export function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const c = createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(aad);
  const body = c.update(plaintext);
  c.final();
  return concat(body, c.getAuthTag());
}

export function aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  const d = createDecipheriv("aes-256-gcm", key, nonce);
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  const body = d.update(sealed.subarray(0, sealed.length - 16));
  try {
    d.final();
  } catch {
    throw new CleanroomError("decrypt_failed", "chunk did not authenticate");
  }
  return new Uint8Array(body);
}
