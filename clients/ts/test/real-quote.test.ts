// A real SGX DCAP quote with its Intel collateral, through @phala/dcap-qvl and our checks. The
// sample lives outside the repository (../shared/attestation-samples, or
// $CLEANROOM_ATTESTATION_SAMPLES); it is skipped when absent, but fails under CI=true.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { checkCrls } from "../src/crl.js";
import { DEFAULT_VERIFIER, quoteFields, verifyQuote, VerifierPolicy } from "../src/quote.js";
import { needs, REPO, toHexStr } from "./helpers.js";
import dcap from "@phala/dcap-qvl";

const DIR = process.env.CLEANROOM_ATTESTATION_SAMPLES ?? resolve(REPO, "..", "shared", "attestation-samples");
const QUOTE = join(DIR, "sgx-dcap-qvl-2025-06.quote.bin");
const COLLATERAL = join(DIR, "sgx-dcap-qvl-2025-06.collateral.json");
const skip = needs(existsSync(QUOTE) && existsSync(COLLATERAL), `the real SGX sample in ${DIR}`);

test("real SGX quote: verified to Intel's root, its figures, and each refusal", { skip }, () => {
  const expected = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8")).samples[0];
  const quote = new Uint8Array(readFileSync(QUOTE));
  const collateral = readFileSync(COLLATERAL, "utf8");
  const now = expected.now as number;
  const status = "ConfigurationAndSWHardeningNeeded";
  const policy: VerifierPolicy = { ...DEFAULT_VERIFIER, mrEnclaves: [expected.mr_enclave], allowedStatuses: [status] };
  const r = verifyQuote(quote, collateral, now, policy, null);
  assert.equal(r.status, status);
  assert.deepEqual(r.advisoryIds, ["INTEL-SA-00289", "INTEL-SA-00615"]);
  const f = quoteFields(quote);
  assert.equal(f.mrEnclave, "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb");
  assert.equal(f.mrSigner, "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6");
  assert.equal(f.isvProdId, 0);
  assert.equal(f.debug, false);
  assert.equal(Buffer.from(f.reportData.subarray(0, 13)).toString(), "Hello, world!");
  assert.equal(toHexStr(f.reportData.subarray(13)), "00".repeat(51));
  const refuses = (code: string, q: Uint8Array, c: string | null, t: number, p: VerifierPolicy, what: string): void => {
    assert.throws(() => verifyQuote(q, c, t, p, null), (e: { code?: string }) => e.code === code, what);
  };
  refuses("tcb_status_not_allowed", quote, collateral, now, DEFAULT_VERIFIER, "the default policy allows only UpToDate");
  refuses("tcb_status_not_allowed", quote, collateral, now, { ...policy, rejectedAdvisories: ["INTEL-SA-00615"] }, "a rejected advisory");
  refuses("collateral_expired", quote, collateral, expected.collateral_valid_now_range_inclusive[0] - 1, policy, "one second early");
  refuses("collateral_expired", quote, collateral, expected.collateral_valid_now_range_inclusive[1] + 1, policy, "one second late");
  refuses("measurement_mismatch", quote, collateral, now, { ...policy, mrEnclaves: ["00".repeat(32)] }, "another MRENCLAVE");
  refuses("measurement_mismatch", quote, collateral, now, { ...policy, mrEnclaves: [] }, "nothing configured");
  refuses("quote_invalid", quote, null, now, policy, "no collateral");
  for (const at of [8, 100, 368, 440, 520, 600, 960, 1020]) {
    const bad = quote.slice();
    bad[at] ^= 1;
    refuses("quote_invalid", bad, collateral, now, policy, `a bit flipped at ${at}`);
  }
  const c = JSON.parse(collateral);
  refuses("quote_invalid", quote, JSON.stringify({ ...c, tcb_info: c.tcb_info.replace("SGX", "SGY") }), now, policy, "the TCB info edited");
  refuses("quote_invalid", quote, JSON.stringify({ ...c, pck_crl: c.pck_crl.slice(0, -2) + (c.pck_crl.endsWith("00") ? "01" : "00") }), now, policy, "the PCK CRL's signature broken");
  // The root CA CRL's nextUpdate, which the JavaScript port does not check but we do.
  assert.throws(() => checkCrls(c, new Uint8Array(dcap.constants.TRUSTED_ROOT_CA_DER), 1775215317), (e: { code?: string }) => e.code === "collateral_expired");
  checkCrls(c, new Uint8Array(dcap.constants.TRUSTED_ROOT_CA_DER), now);
  // Another Intel CA's chain as the PCK CRL's issuer: not the CA of this quote's PCK certificate.
  assert.throws(() => verifyQuote(quote, JSON.stringify({ ...c, pck_crl_issuer_chain: c.tcb_info_issuer_chain }), now, policy, null),
    /not the CRL of the CA that issued the quote's PCK certificate/);
});
