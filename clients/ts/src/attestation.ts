// The attestation bundle and the eleven verifier checks, in the order of
// docs/wire.md#verifier-checks; stop at the first failure.
import { concat, equal, fromB64, fromHex, toHex } from "./bytes.js";
import { REPORT_DATA_DOMAIN, sha256, sha512 } from "./crypto.js";
import { CleanroomError } from "./errors.js";
import { checkCollateralAge, QuoteReport, verifyQuote, VerifierPolicy } from "./quote.js";

export interface Bundle {
  format: 1; mode: "simulation" | "gramine-direct" | "sgx"; simulated: boolean;
  quote: Uint8Array; collateral: string | null; encPub: Uint8Array; sigPub: Uint8Array;
  policy: Uint8Array; policyHash: Uint8Array; nonce: Uint8Array; simulationRootCa: Uint8Array | null;
  json: Record<string, unknown>;
}

/** What a party pins after every check passed. */
export interface Enclave {
  encPub: Uint8Array; sigPub: Uint8Array; simulated: boolean; mode: string;
  report: QuoteReport; bundle: Bundle;
}

const FIELDS = ["format", "mode", "simulated", "quote", "collateral", "enc_pub", "sig_pub", "policy", "policy_hash", "nonce", "simulation_root_ca"];
const MODES = ["simulation", "gramine-direct", "sgx"];

export function reportData(encPub: Uint8Array, sigPub: Uint8Array, policyHash: Uint8Array, nonce: Uint8Array): Uint8Array {
  return sha512(concat(REPORT_DATA_DOMAIN, encPub, sigPub, policyHash, nonce));
}

/** Check 1: the bundle is well-formed. */
export function parseBundle(json: unknown): Bundle {
  const bad = (what: string): never => { throw new CleanroomError("bad_message", `attestation bundle: ${what}`); };
  if (typeof json !== "object" || json === null || Array.isArray(json)) bad("not a JSON object");
  const j = json as Record<string, unknown>;
  const keys = Object.keys(j);
  for (const k of keys) if (!FIELDS.includes(k)) bad(`unknown field ${JSON.stringify(k)}`);
  for (const k of FIELDS) if (!keys.includes(k)) bad(`missing field ${k}`);
  if (j.format !== 1) bad("format must be 1");
  if (typeof j.mode !== "string" || !MODES.includes(j.mode)) bad(`unknown mode ${JSON.stringify(j.mode)}`);
  if (typeof j.simulated !== "boolean" || j.simulated !== (j.mode !== "sgx")) bad("simulated does not agree with mode");
  if (j.collateral !== null && typeof j.collateral !== "string") bad("collateral must be a string or null");
  const simRoot = j.simulation_root_ca === null ? null : fromB64(j.simulation_root_ca, "attestation bundle simulation_root_ca");
  if ((simRoot !== null) !== j.simulated) bad("simulation_root_ca must be present exactly when simulated");
  const b: Bundle = {
    format: 1, mode: j.mode as Bundle["mode"], simulated: j.simulated as boolean,
    quote: fromB64(j.quote, "attestation bundle quote"),
    collateral: j.collateral as string | null,
    encPub: fromHex(String(j.enc_pub), "attestation bundle enc_pub", 32),
    sigPub: fromHex(String(j.sig_pub), "attestation bundle sig_pub", 32),
    policy: fromB64(j.policy, "attestation bundle policy"),
    policyHash: fromHex(String(j.policy_hash), "attestation bundle policy_hash", 32),
    nonce: fromHex(String(j.nonce), "attestation bundle nonce", 32),
    simulationRootCa: simRoot, json: j,
  };
  if (!equal(sha256(b.policy), b.policyHash)) bad("policy_hash is not the SHA-256 of policy");
  return b;
}

export interface VerifyOptions {
  policy: VerifierPolicy;
  ownPolicy: Uint8Array;
  /** The nonce the party just sent; null only for an offline re-check of a saved bundle. */
  nonce: Uint8Array | null;
  now: number;
  /** The party's own collateral (dcap-qvl JSON) instead of the host's. */
  collateral?: string;
}

export function verifyBundle(json: unknown, o: VerifyOptions): Enclave {
  const b = parseBundle(json); // 1
  if (b.simulated && !o.policy.allowSimulation) {
    throw new CleanroomError("simulation_not_allowed", `the enclave runs in ${b.mode} mode, which proves nothing; refused without --insecure-allow-simulation`);
  } // 2
  const collateral = o.collateral ?? b.collateral;
  // 3-7; a simulated quote chains to the bundle's root only because the user opted in above.
  const report = verifyQuote(b.quote, collateral, o.now, o.policy, b.simulated ? b.simulationRootCa : null);
  const expected = reportData(b.encPub, b.sigPub, sha256(b.policy), b.nonce);
  if (!equal(report.fields.reportData, expected)) {
    throw new CleanroomError("report_data_mismatch", "the quote's REPORTDATA does not bind the bundle's keys, policy and nonce");
  } // 8
  if (o.policy.maxCollateralAge !== undefined) checkCollateralAge(collateral!, o.now, o.policy.maxCollateralAge); // 9
  if (!equal(b.policy, o.ownPolicy)) {
    throw new CleanroomError("policy_mismatch", `the enclave runs policy ${toHex(b.policyHash)}, not your copy ${toHex(sha256(o.ownPolicy))}`);
  }
  if (o.policy.expectedPolicyHash !== undefined && toHex(b.policyHash) !== o.policy.expectedPolicyHash.toLowerCase()) {
    throw new CleanroomError("policy_mismatch", "the enclave's policy is not the pinned expected_policy_hash");
  } // 10
  if (o.nonce !== null && !equal(b.nonce, o.nonce)) {
    throw new CleanroomError("stale_nonce", "the bundle does not carry the nonce just sent (a replayed quote)");
  } // 11
  return { encPub: b.encPub, sigPub: b.sigPub, simulated: b.simulated, mode: b.mode, report, bundle: b };
}
