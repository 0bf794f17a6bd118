// attestation.json: the simulated bundle verifies with the opt-in; each refusal gives its code.
import assert from "node:assert/strict";
import { test } from "node:test";
import dcap from "@phala/dcap-qvl";
import { verifyBundle, VerifyOptions } from "../src/attestation.js";
import { fromB64, toB64 } from "../src/bytes.js";
import { sha256 } from "../src/crypto.js";
import { parsePolicy } from "../src/policy.js";
import { DEFAULT_VERIFIER, SIM_MR_ENCLAVE } from "../src/quote.js";
import { parseSaved, verifySignedResult } from "../src/result.js";
import { flipHex, hex, toHexStr, vector } from "./helpers.js";

const a = vector("attestation");
const policyBytes = new TextEncoder().encode(vector("policy").text);
const SIM = { ...DEFAULT_VERIFIER, allowSimulation: true };

type Bundle = Record<string, unknown>;
const base = (): VerifyOptions => ({ policy: SIM, ownPolicy: policyBytes, nonce: hex(a.nonce), now: a.now });
const code = (c: string) => (e: { code?: string }) => e.code === c;

test("attestation: the vector bundle passes every check at `now` with simulation allowed", () => {
  const e = verifyBundle(a.bundle, base());
  assert.equal(toHexStr(e.report.fields.reportData), a.report_data);
  assert.equal(e.report.fields.mrEnclave, a.quote_fields.mr_enclave);
  assert.equal(e.report.fields.mrSigner, a.quote_fields.mr_signer);
  assert.equal(e.report.fields.debug, a.quote_fields.debug);
  assert.equal(e.report.fields.version, a.quote_fields.version);
  assert.equal(e.report.fields.mrEnclave, SIM_MR_ENCLAVE);
  assert.equal(toHexStr(e.sigPub), a.bundle.sig_pub);
  assert.equal(e.simulated, true);
});

// The edits the vector file describes, one function each; an unknown one fails the test.
const EDITS: Record<string, (b: Bundle, o: VerifyOptions) => void> = {
  "flip the last bit of enc_pub": (b) => { b.enc_pub = flipHex(b.enc_pub as string); },
  "flip the last bit of sig_pub": (b) => { b.sig_pub = flipHex(b.sig_pub as string); },
  "flip the last bit of nonce": (b) => { b.nonce = flipHex(b.nonce as string); },
  "flip the last bit of policy_hash": (b) => { b.policy_hash = flipHex(b.policy_hash as string); },
  "append a newline to the bundle's policy (and fix its policy_hash)": (b) => {
    const p = new Uint8Array([...fromB64(b.policy, "policy"), 0x0a]);
    b.policy = toB64(p);
    b.policy_hash = toHexStr(sha256(p));
  },
  "verify against another policy copy (a newline appended)": (_b, o) => { o.ownPolicy = new Uint8Array([...policyBytes, 0x0a]); },
  "verify without allowing simulation": (_b, o) => { o.policy = DEFAULT_VERIFIER; },
  "request another nonce than the bundle's": (_b, o) => { o.nonce = sha256(o.nonce!); },
};

test("attestation refusals: each edit of the vector file gives its code", () => {
  assert.ok(a.refusals.length >= 8);
  for (const r of a.refusals) {
    const edit = EDITS[r.edit];
    assert.ok(edit, `no implementation of the edit ${JSON.stringify(r.edit)}`);
    const b = structuredClone(a.bundle);
    const o = base();
    edit(b, o);
    assert.throws(() => verifyBundle(b, o), code(r.code), r.edit);
  }
});

test("attestation refusals beyond the vectors: shape, chain, collateral, status, measurement", () => {
  const cases: [string, (b: Bundle, o: VerifyOptions) => void, string][] = [
    ["an unknown field", (b) => { b.extra = 1; }, "bad_message"],
    ["a missing field", (b) => { delete b.collateral; }, "bad_message"],
    ["format 2", (b) => { b.format = 2; }, "bad_message"],
    ["sgx mode claiming simulated", (b) => { b.mode = "sgx"; }, "bad_message"],
    ["no simulation root while simulated", (b) => { b.simulation_root_ca = null; }, "bad_message"],
    ["base64 without its padding", (b) => {
      const p = fromB64(b.policy, "policy");
      const grown = new Uint8Array([...p, ...new Uint8Array(((1 - (p.length % 3)) + 3) % 3 || 3)]);
      b.policy = toB64(grown).replace(/=+$/, "");
    }, "bad_message"],
    ["base64 with a stray pad", (b) => { b.policy = (b.policy as string) + "="; }, "bad_message"],
    ["one bit of the ISV report body", (b) => { const q = fromB64(b.quote, "q"); q[200] ^= 1; b.quote = toB64(q); }, "quote_invalid"],
    ["one bit of the ISV signature", (b) => { const q = fromB64(b.quote, "q"); q[440] ^= 1; b.quote = toB64(q); }, "quote_invalid"],
    ["no collateral", (b) => { b.collateral = null; }, "quote_invalid"],
    ["a root CRL whose signature is broken", (b) => {
      const c = JSON.parse(b.collateral as string);
      c.root_ca_crl = c.root_ca_crl.slice(0, -2) + (c.root_ca_crl.endsWith("00") ? "01" : "00");
      b.collateral = JSON.stringify(c);
    }, "quote_invalid"],
    ["Intel's root named as the simulation root", (b) => { b.simulation_root_ca = toB64(new Uint8Array(dcap.constants.TRUSTED_ROOT_CA_DER)); }, "quote_invalid"],
    ["a year after the collateral", (_b, o) => { o.now += 365 * 86400; }, "collateral_expired"],
    ["before the collateral", (_b, o) => { o.now -= 365 * 86400; }, "collateral_expired"],
    ["UpToDate not allowed", (_b, o) => { o.policy = { ...SIM, allowedStatuses: ["SWHardeningNeeded"] }; }, "tcb_status_not_allowed"],
    ["another MRENCLAVE listed", (_b, o) => { o.policy = { ...SIM, mrEnclaves: ["00".repeat(32)] }; }, "measurement_mismatch"],
    ["an MRSIGNER without its ids", (_b, o) => { o.policy = { ...SIM, mrSigner: a.quote_fields.mr_signer }; }, "measurement_mismatch"],
    ["collateral older than allowed", (_b, o) => { o.policy = { ...SIM, maxCollateralAge: 1 }; }, "collateral_expired"],
    ["another pinned policy hash", (_b, o) => { o.policy = { ...SIM, expectedPolicyHash: "00".repeat(32) }; }, "policy_mismatch"],
  ];
  for (const [what, edit, want] of cases) {
    const b = structuredClone(a.bundle);
    const o = base();
    edit(b, o);
    assert.throws(() => verifyBundle(b, o), code(want), what);
  }
  // The same measurement, by signer with its ids, passes.
  const q = verifyBundle(a.bundle, { ...base(), policy: { ...SIM, mrSigner: a.quote_fields.mr_signer, isvProdId: 0, minIsvSvn: 0 } });
  assert.equal(q.report.fields.mrSigner, a.quote_fields.mr_signer);
});

test("saved result: checked offline, the bundle (no fresh nonce) then the result with its sig_pub", () => {
  const saved = parseSaved(a.saved_result, "saved_result");
  const e = verifyBundle(saved.attestation, { policy: SIM, ownPolicy: policyBytes, nonce: null, now: a.now });
  const policy = parsePolicy(policyBytes);
  const doc = verifySignedResult(saved.signed, e.sigPub, policy, "advertiser", { simulated: e.simulated });
  assert.equal(toHexStr(doc.query_id as Uint8Array), vector("result").query_id);
  assert.equal(toHexStr(saved.signed), vector("result").signed);
  assert.throws(() => parseSaved({ ...a.saved_result, format: 2 }, "x"), code("bad_message"));
  assert.throws(() => verifyBundle(saved.attestation, { policy: DEFAULT_VERIFIER, ownPolicy: policyBytes, nonce: null, now: a.now }), code("simulation_not_allowed"));
});
