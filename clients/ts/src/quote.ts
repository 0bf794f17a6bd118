// Checks 3 to 7 of docs/wire.md#verifier-checks on an SGX ECDSA quote: @phala/dcap-qvl verifies
// the signatures, the chain and the TCB; the CRLs, the status, debug and measurement are ours.
import dcap from "@phala/dcap-qvl";
import { toHex } from "./bytes.js";
import { checkCrls } from "./crl.js";
import { CleanroomError } from "./errors.js";

export const SIM_MR_ENCLAVE = "278321addadfd87f3560c35c4e06cce167f7c8cc089ede2891a4fe7af700676b";

export interface VerifierPolicy {
  allowSimulation: boolean;
  mrEnclaves: string[];
  mrSigner?: string;
  isvProdId?: number;
  minIsvSvn?: number;
  allowedStatuses: string[];
  rejectedAdvisories: string[];
  maxCollateralAge?: number;
  expectedPolicyHash?: string;
}

export const DEFAULT_VERIFIER: VerifierPolicy = {
  allowSimulation: false, mrEnclaves: [], allowedStatuses: ["UpToDate"], rejectedAdvisories: [],
};

export interface QuoteFields {
  version: number; mrEnclave: string; mrSigner: string; isvProdId: number; isvSvn: number;
  debug: boolean; reportData: Uint8Array;
}

/** The fixed offsets of docs/wire.md#reportdata. */
export function quoteFields(quote: Uint8Array): QuoteFields {
  if (quote.length < 432) throw new CleanroomError("quote_invalid", `quote: ${quote.length} bytes is too short`);
  const v = new DataView(quote.buffer, quote.byteOffset, quote.byteLength);
  return {
    version: v.getUint16(0, true),
    mrEnclave: toHex(quote.subarray(112, 144)),
    mrSigner: toHex(quote.subarray(176, 208)),
    isvProdId: v.getUint16(304, true),
    isvSvn: v.getUint16(306, true),
    debug: (quote[96] & 0x02) !== 0,
    reportData: quote.slice(368, 432),
  };
}

// dcap-qvl's messages, mapped once to refusal codes; its raw text is not shown to users.
function mapDcapError(e: unknown): CleanroomError {
  const m = (e as Error)?.message ?? String(e);
  if (/issue date is in the future|expired|not yet valid/i.test(m)) {
    return new CleanroomError("collateral_expired", "the collateral is not valid now (TCB info, QE identity or a certificate)");
  }
  if (/TCB status is invalid/i.test(m)) return new CleanroomError("tcb_status_not_allowed", "the platform's TCB level is revoked or invalid");
  if (/Debug mode/i.test(m)) return new CleanroomError("debug_enclave", "the quote is from a debug enclave");
  return new CleanroomError("quote_invalid", "the quote or its collateral did not verify (signatures, certificate chain, FMSPC or format)");
}

/** The PCK certificate chain embedded in the quote (certification data type 5), as PEM. */
function pckLeaf(quote: Uint8Array): string {
  try {
    const cert = dcap.Quote.parse(Buffer.from(quote)).authData.intoV3().certificationData;
    if (cert.certType !== 5) throw new Error(`certification data type ${cert.certType}`);
    return Buffer.from(cert.body).toString("latin1");
  } catch (e) {
    throw new CleanroomError("quote_invalid", `quote: no PCK certificate chain (${(e as Error).message})`);
  }
}

export interface QuoteReport { status: string; advisoryIds: string[]; fields: QuoteFields }

/**
 * Checks 3 (chain: to Intel's root built into dcap-qvl, or to `simulationRoot` when the caller
 * has already allowed simulation), 4, 5, 6 and 7, in that order.
 */
export function verifyQuote(
  quote: Uint8Array, collateralJson: string | null, now: number, policy: VerifierPolicy,
  simulationRoot: Uint8Array | null,
): QuoteReport {
  if (collateralJson === null) throw new CleanroomError("quote_invalid", "no collateral: the host sent none and none was given (--collateral)");
  let collateral: Record<string, unknown>;
  try {
    collateral = JSON.parse(collateralJson);
  } catch {
    throw new CleanroomError("quote_invalid", "collateral: not JSON");
  }
  const rootDer = simulationRoot ?? new Uint8Array(dcap.constants.TRUSTED_ROOT_CA_DER);
  const verifier = dcap.QuoteVerifier.newWithRootCa(Buffer.from(rootDer));
  let verified: { status: string; advisory_ids: string[] };
  try {
    verified = verifier.verify(Buffer.from(quote), collateral as unknown as dcap.Collateral, now);
  } catch (e) {
    throw mapDcapError(e);
  }
  checkCrls(collateral, rootDer, now, pckLeaf(quote));
  const fields = quoteFields(quote);
  if (fields.version !== 3) throw new CleanroomError("quote_invalid", `quote version ${fields.version}, expected 3`);
  const status = verified.status;
  const advisories = verified.advisory_ids ?? [];
  if (status === "Revoked" || !policy.allowedStatuses.includes(status)) {
    throw new CleanroomError("tcb_status_not_allowed", `TCB status ${status} is not allowed (allowed: ${policy.allowedStatuses.join(", ")})`);
  }
  const rejected = advisories.filter((a) => policy.rejectedAdvisories.includes(a));
  if (rejected.length) throw new CleanroomError("tcb_status_not_allowed", `the TCB carries rejected advisories ${rejected.join(", ")}`);
  if (fields.debug) throw new CleanroomError("debug_enclave", "the DEBUG attribute is set");
  checkMeasurement(fields, policy, simulationRoot !== null);
  return { status, advisoryIds: advisories, fields };
}

function checkMeasurement(f: QuoteFields, p: VerifierPolicy, simulated: boolean): void {
  const enclaves = p.mrEnclaves.map((x) => x.toLowerCase());
  const bySigner = p.mrSigner !== undefined;
  if (enclaves.length === 0 && !bySigner) {
    if (simulated) enclaves.push(SIM_MR_ENCLAVE);
    else throw new CleanroomError("measurement_mismatch", "no measurement configured: give --mrenclave or --mrsigner");
  }
  if (enclaves.length && !enclaves.includes(f.mrEnclave)) {
    throw new CleanroomError("measurement_mismatch", `MRENCLAVE ${f.mrEnclave} is not in the allow-list`);
  }
  if (bySigner) {
    if (f.mrSigner !== p.mrSigner!.toLowerCase()) throw new CleanroomError("measurement_mismatch", `MRSIGNER ${f.mrSigner} is not the trusted one`);
    if (p.isvProdId === undefined || f.isvProdId !== p.isvProdId) throw new CleanroomError("measurement_mismatch", `ISVPRODID ${f.isvProdId} is not the expected one`);
    if (p.minIsvSvn === undefined || f.isvSvn < p.minIsvSvn) throw new CleanroomError("measurement_mismatch", `ISVSVN ${f.isvSvn} is below the minimum`);
  }
}

/** Check 9: the TCB info's issueDate is at most `maxAge` seconds before `now`. */
export function checkCollateralAge(collateralJson: string, now: number, maxAge: number): void {
  let issued: number;
  try {
    issued = Date.parse(JSON.parse(JSON.parse(collateralJson).tcb_info).issueDate) / 1000;
  } catch {
    throw new CleanroomError("quote_invalid", "collateral: the TCB info date cannot be read");
  }
  if (!Number.isFinite(issued)) throw new CleanroomError("quote_invalid", "collateral: the TCB info date cannot be read");
  if (now - issued > maxAge) throw new CleanroomError("collateral_expired", `the TCB info is ${now - issued} s old, over the maximum ${maxAge} s`);
}
