// Command-line options shared by the commands: the host, the policy, keys, and the verifier
// policy (the same TOML keys as policies/verifier-policy.example.toml; flags win).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { toHex } from "./bytes.js";
import { sha256 } from "./crypto.js";
import { CleanroomError } from "./errors.js";
import { loadKeys, PartyKeys } from "./keys.js";
import { parsePolicy, Policy } from "./policy.js";
import { DEFAULT_VERIFIER, VerifierPolicy } from "./quote.js";

export type Flags = Record<string, string | boolean | string[] | undefined>;

export const VERIFIER_OPTIONS = {
  "verifier-policy": { type: "string" },
  "insecure-allow-simulation": { type: "boolean" },
  mrenclave: { type: "string", multiple: true },
  mrsigner: { type: "string" },
  "isv-prod-id": { type: "string" },
  "min-isv-svn": { type: "string" },
  "allow-status": { type: "string", multiple: true },
  collateral: { type: "string" },
} as const;

export const VERIFIER_HELP = `verifier options:
  --verifier-policy FILE        measurements and TCB levels you accept (TOML: mr_enclaves, mr_signer,
                                isv_prod_id, min_isv_svn, allowed_statuses, rejected_advisories,
                                max_collateral_age, policy_file | expected_policy_hash, allow_simulation)
  --mrenclave HEX               an allowed MRENCLAVE (repeatable)
  --mrsigner HEX --isv-prod-id N --min-isv-svn N   trust a signing key instead, or as well
  --allow-status STATUS         an allowed TCB status (repeatable; default UpToDate)
  --collateral FILE             your own DCAP collateral (dcap-qvl JSON) instead of the host's
  --insecure-allow-simulation   INSECURE: accept a simulated enclave, which proves nothing`;

export function required(flags: Flags, name: string, env?: string): string {
  const v = flags[name] ?? (env ? process.env[env] : undefined);
  if (typeof v !== "string" || v === "") throw new CleanroomError("usage", `--${name} is required${env ? ` (or $${env})` : ""}`);
  return v;
}

function int(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === "number" ? v : /^\d+$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new CleanroomError("usage", `${what} must be a non-negative integer`);
  return n;
}

const VERIFIER_KEYS = ["mr_enclaves", "mr_signer", "isv_prod_id", "min_isv_svn", "allowed_statuses", "rejected_advisories", "max_collateral_age", "policy_file", "expected_policy_hash", "allow_simulation"];

export function verifierPolicy(flags: Flags): VerifierPolicy {
  const p: VerifierPolicy = { ...DEFAULT_VERIFIER };
  const file = flags["verifier-policy"] ?? process.env.CLEANROOM_VERIFIER_POLICY;
  if (typeof file === "string") {
    let t: Record<string, unknown>;
    try {
      t = parseToml(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new CleanroomError("policy_invalid", `${file}: ${(e as Error).message.split("\n")[0]}`);
    }
    for (const k of Object.keys(t)) if (!VERIFIER_KEYS.includes(k)) throw new CleanroomError("policy_invalid", `${file}: unknown key ${k}`);
    const list = (k: string): string[] | undefined => {
      const v = t[k];
      if (v === undefined) return undefined;
      if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new CleanroomError("policy_invalid", `${file}: ${k} must be a list of strings`);
      return v as string[];
    };
    p.mrEnclaves = list("mr_enclaves") ?? [];
    p.allowedStatuses = list("allowed_statuses") ?? p.allowedStatuses;
    p.rejectedAdvisories = list("rejected_advisories") ?? [];
    if (typeof t.mr_signer === "string") p.mrSigner = t.mr_signer;
    p.isvProdId = int(t.isv_prod_id, `${file}: isv_prod_id`);
    p.minIsvSvn = int(t.min_isv_svn, `${file}: min_isv_svn`);
    p.maxCollateralAge = int(t.max_collateral_age, `${file}: max_collateral_age`);
    p.allowSimulation = t.allow_simulation === true;
    if (t.policy_file !== undefined && t.expected_policy_hash !== undefined) throw new CleanroomError("policy_invalid", `${file}: policy_file or expected_policy_hash, not both`);
    if (typeof t.policy_file === "string") p.expectedPolicyHash = toHex(sha256(readFileSync(resolve(dirname(file), t.policy_file))));
    if (typeof t.expected_policy_hash === "string") p.expectedPolicyHash = t.expected_policy_hash;
  }
  if (Array.isArray(flags.mrenclave)) p.mrEnclaves = [...p.mrEnclaves, ...flags.mrenclave];
  if (typeof flags.mrsigner === "string") p.mrSigner = flags.mrsigner;
  p.isvProdId = int(flags["isv-prod-id"], "--isv-prod-id") ?? p.isvProdId;
  p.minIsvSvn = int(flags["min-isv-svn"], "--min-isv-svn") ?? p.minIsvSvn;
  if (Array.isArray(flags["allow-status"])) p.allowedStatuses = flags["allow-status"];
  if (flags["insecure-allow-simulation"] === true) p.allowSimulation = true;
  return p;
}

export function collateral(flags: Flags): string | undefined {
  return typeof flags.collateral === "string" ? readFileSync(flags.collateral, "utf8") : undefined;
}

export function loadPolicy(flags: Flags): Policy {
  const file = required(flags, "policy", "CLEANROOM_POLICY");
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new CleanroomError("usage", `--policy ${file}: ${(e as Error).message}`);
  }
  return parsePolicy(bytes);
}

export function keys(flags: Flags): PartyKeys {
  return loadKeys(required(flags, "keys", "CLEANROOM_KEYS"));
}
