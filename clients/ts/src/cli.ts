#!/usr/bin/env node
// cleanroom-ts: a party's command line, built on the library in this folder.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { verifyBundle } from "./attestation.js";
import { TrustStore, verifyAuditLog } from "./audit.js";
import { toHex } from "./bytes.js";
import { PartyClient, QuerySpec } from "./client.js";
import { CleanroomError } from "./errors.js";
import { resultJson, resultTable } from "./format.js";
import { Host } from "./http.js";
import { checkKeysInPolicy, generateKeys, loadKeys, saveKeys } from "./keys.js";
import { ValueMap } from "./msgpack.js";
import { jsonToValue } from "./policy.js";
import { parseSaved, savedResult, verifySignedResult } from "./result.js";
import { collateral, Flags, keys, loadPolicy, required, VERIFIER_HELP, VERIFIER_OPTIONS, verifierPolicy } from "./options.js";

const COMMON = `  --host URL       the clean-room host (or $CLEANROOM_HOST)
  --policy FILE    your copy of the agreed policy (or $CLEANROOM_POLICY)
  --keys FILE      your <party>.key.json (or $CLEANROOM_KEYS)`;

const HELP: Record<string, string> = {
  "": `usage: cleanroom-ts COMMAND [options]   (cleanroom-ts COMMAND --help)

A party's client for the data clean room, written from docs/wire.md.
commands:
  keygen    make a party's signing and result keys
  attest    verify the enclave's attestation and print what was checked
  upload    normalise, encrypt and upload a CSV of one of your datasets
  query     run a plan or a template, open and verify the result
  results   get ID: fetch, open and verify a stored result sent to you
  check     verify a saved result offline
  uploads   list the accepted uploads, each checked against the signed audit log
  audit     download and verify the enclave's audit log
Every command that talks to the host verifies the attestation first.`,
  keygen: "usage: cleanroom-ts keygen --party ID --out DIR\n  writes DIR/ID.key.json (secret) and DIR/ID.pub.json (for `cleanroom policy bind-keys`)",
  attest: `usage: cleanroom-ts attest --host URL --policy FILE [--json]\n${VERIFIER_HELP}`,
  upload: `usage: cleanroom-ts upload --dataset NAME FILE.csv [--append | --replace] [--skip-invalid]
    [--chunk-kib N] [--delimiter C]
${COMMON}
  identifiers: email and exact as docs/normalisation.md; phone numbers only in E.164 form
${VERIFIER_HELP}`,
  query: `usage: cleanroom-ts query (--plan FILE.json [--sql TEXT] | TEMPLATE [--param NAME=V1,V2]... |
    ANALYSIS --params JSON) [--save FILE] [--json]
${COMMON}
${VERIFIER_HELP}`,
  results: `usage: cleanroom-ts results get QUERY_ID [--save FILE] [--json]\n${COMMON}\n${VERIFIER_HELP}`,
  check: `usage: cleanroom-ts check FILE --policy FILE (--keys FILE | --party ID) [--now UNIX] [--json]
  re-verifies the saved attestation (no fresh nonce), then the result's signature and policy
${VERIFIER_HELP}`,
  uploads: `usage: cleanroom-ts uploads --host URL --policy FILE [--json]\n${VERIFIER_HELP}`,
  audit: `usage: cleanroom-ts audit --host URL --policy FILE [--json]\n${VERIFIER_HELP}`,
};

const OPTIONS = {
  help: { type: "boolean", short: "h" }, json: { type: "boolean" }, host: { type: "string" },
  policy: { type: "string" }, keys: { type: "string" }, party: { type: "string" }, out: { type: "string" },
  dataset: { type: "string" }, append: { type: "boolean" }, replace: { type: "boolean" },
  "skip-invalid": { type: "boolean" }, "chunk-kib": { type: "string" }, delimiter: { type: "string" },
  plan: { type: "string" }, sql: { type: "string" }, param: { type: "string", multiple: true },
  params: { type: "string" }, save: { type: "string" }, now: { type: "string" },
  ...VERIFIER_OPTIONS,
} as const;

function print(flags: Flags, json: unknown, text: string): void {
  process.stdout.write((flags.json ? JSON.stringify(json, null, 2) : text) + "\n");
}

function client(flags: Flags): PartyClient {
  return new PartyClient(new Host(required(flags, "host", "CLEANROOM_HOST")), loadPolicy(flags), verifierPolicy(flags), new TrustStore(), collateral(flags));
}

function save(file: string | undefined, signed: Uint8Array, bundle: unknown): void {
  if (!file) return;
  if (existsSync(file)) throw new CleanroomError("usage", `--save ${file}: exists; not overwritten`);
  writeFileSync(file, JSON.stringify(savedResult(signed, bundle), null, 2) + "\n");
}

function templateArgs(params: string[] | undefined): Record<string, string[]> {
  const args: Record<string, string[]> = {};
  for (const p of params ?? []) {
    const eq = p.indexOf("=");
    if (eq < 1) throw new CleanroomError("usage", `--param ${p}: expected NAME=VALUE[,VALUE...]`);
    args[p.slice(0, eq)] = p.slice(eq + 1) === "" ? [] : p.slice(eq + 1).split(",");
  }
  return args;
}

function querySpec(flags: Flags, positional: string[], policyHasTemplate: (id: string) => boolean): QuerySpec {
  if (typeof flags.plan === "string") {
    let plan: unknown;
    try {
      plan = JSON.parse(readFileSync(flags.plan, "utf8"));
    } catch (e) {
      throw new CleanroomError("usage", `--plan ${flags.plan}: not a JSON file (${(e as Error).message})`);
    }
    return { kind: "plan", plan: jsonToValue(plan, `--plan ${flags.plan}`), sql: flags.sql as string | undefined };
  }
  const id = positional[0];
  if (!id) throw new CleanroomError("usage", "give --plan FILE, or a template or analysis id");
  if (policyHasTemplate(id)) return { kind: "template", id, args: templateArgs(flags.param as string[] | undefined) };
  const params = typeof flags.params === "string" ? jsonToValue(JSON.parse(flags.params), "--params") : {};
  return { kind: "analysis", id, params: params as ValueMap };
}

async function run(command: string, flags: Flags, positional: string[]): Promise<void> {
  switch (command) {
    case "keygen": {
      const k = generateKeys(required(flags, "party"));
      const { secret, pub } = saveKeys(k, required(flags, "out"));
      print(flags, { secret, pub, signing_key: toHex(k.signingPublic), result_key: toHex(k.resultPublic) },
        `private keys: ${secret} (mode 0600; never share it)\npublic keys:  ${pub}\n  signing_key = "${toHex(k.signingPublic)}"\n  result_key = "${toHex(k.resultPublic)}"`);
      return;
    }
    case "attest": {
      const e = await client(flags).attest();
      const f = e.report.fields;
      print(flags, { accepted: true, mode: e.mode, simulated: e.simulated, status: e.report.status, advisory_ids: e.report.advisoryIds, mr_enclave: f.mrEnclave, mr_signer: f.mrSigner, isv_prod_id: f.isvProdId, isv_svn: f.isvSvn, enc_pub: toHex(e.encPub), sig_pub: toHex(e.sigPub), policy_hash: toHex(e.bundle.policyHash) },
        [e.simulated ? "WARNING: SIMULATED attestation: proves nothing" : "", "attestation: ACCEPTED (checks 1-11 of docs/wire.md#verifier-checks)",
          `mode:        ${e.mode}`, `tcb status:  ${e.report.status}`, `mr_enclave:  ${f.mrEnclave}`, `mr_signer:   ${f.mrSigner}`,
          `enc_pub:     ${toHex(e.encPub)}`, `sig_pub:     ${toHex(e.sigPub)} (pinned)`, `policy_hash: ${toHex(e.bundle.policyHash)}`].filter(Boolean).join("\n"));
      return;
    }
    case "upload": {
      const c = client(flags);
      const k = keys(flags);
      checkKeysInPolicy(k, c.policy);
      const file = positional[0];
      if (!file) throw new CleanroomError("usage", "upload: give the CSV FILE");
      const e = await c.attest();
      const mode = flags.append ? "append" : flags.replace ? "replace" : "create";
      if (flags["chunk-kib"] !== undefined && !/^\d+$/.test(String(flags["chunk-kib"]))) throw new CleanroomError("usage", "--chunk-kib must be a whole number (4 to 8192)");
      const kib = flags["chunk-kib"] === undefined ? undefined : Number(flags["chunk-kib"]) * 1024;
      const r = await c.upload(e, k, file, required(flags, "dataset"), { mode, skipInvalid: flags["skip-invalid"] === true, chunkSize: kib, delimiter: flags.delimiter as string | undefined });
      print(flags, { upload_id: toHex(r.upload_id as Uint8Array), rows: r.rows, digest: toHex(r.digest as Uint8Array), skipped: r.skipped ?? {}, audit_seq: (r.audit_head as ValueMap).seq },
        `uploaded ${String(r.rows)} rows to ${String(r.dataset)}: upload ${toHex(r.upload_id as Uint8Array)}\nreceipt verified (enclave signature, digest ${toHex(r.digest as Uint8Array)}, audit head ${String((r.audit_head as ValueMap).seq)})`);
      return;
    }
    case "query": {
      const c = client(flags);
      const k = keys(flags);
      checkKeysInPolicy(k, c.policy);
      const spec = querySpec(flags, positional, (id) => c.policy.templates.has(id));
      const e = await c.attest();
      const out = await c.query(e, k, spec);
      save(flags.save as string | undefined, out.signed, e.bundle.json);
      print(flags, resultJson(out.doc), resultTable(out.doc));
      return;
    }
    case "results": {
      if (positional[0] !== "get" || !positional[1]) throw new CleanroomError("usage", "usage: cleanroom-ts results get QUERY_ID");
      const c = client(flags);
      const k = keys(flags);
      const e = await c.attest();
      const out = await c.fetchResult(e, k, positional[1]);
      save(flags.save as string | undefined, out.signed, e.bundle.json);
      print(flags, resultJson(out.doc), resultTable(out.doc));
      return;
    }
    case "check": {
      const file = positional[0];
      if (!file) throw new CleanroomError("usage", "check: give the saved result FILE");
      const policy = loadPolicy(flags);
      const party = typeof flags.party === "string" ? flags.party : loadKeys(required(flags, "keys", "CLEANROOM_KEYS")).party;
      const saved = parseSaved(JSON.parse(readFileSync(file, "utf8")), file);
      if (flags.now !== undefined && !/^\d+$/.test(String(flags.now))) throw new CleanroomError("usage", "--now must be Unix seconds");
      const now = flags.now === undefined ? Math.floor(Date.now() / 1000) : Number(flags.now);
      const e = verifyBundle(saved.attestation, { policy: verifierPolicy(flags), ownPolicy: policy.bytes, nonce: null, now, collateral: collateral(flags) });
      const doc = verifySignedResult(saved.signed, e.sigPub, policy, party, { simulated: e.simulated });
      print(flags, resultJson(doc), `${resultTable(doc)}\nchecked offline: attestation (checks 1-10) and the enclave's signature with its sig_pub`);
      return;
    }
    case "uploads": {
      const c = client(flags);
      const list = await c.verifiedUploads(await c.attest());
      print(flags, list.map((u) => ({ ...u.entry, verified: u.verified, ...(u.why ? { why: u.why } : {}) })),
        list.map((u) => `${String(u.entry.upload_id)}  ${String(u.entry.party).padEnd(12)} ${String(u.entry.dataset).padEnd(14)} ${String(u.entry.rows).padStart(9)} rows  ${u.verified ? "verified in the audit log" : `NOT VERIFIED: ${u.why}`}`).join("\n") || "no uploads");
      if (list.some((u) => !u.verified)) throw new CleanroomError("bad_message", "an upload listed by the host is not in the signed audit log as listed");
      return;
    }
    case "audit": {
      const c = client(flags);
      const e = await c.attest();
      const body = await c.host.get("/v1/audit?after=0") as { entries: string[] };
      const log = verifyAuditLog(body.entries, e.sigPub, c.policy.collaborationId);
      print(flags, { head: { seq: log.head.seq, hash: toHex(log.head.hash) }, entries: log.entries.map((x) => ({ seq: x.seq, kind: x.kind, at: x.at, hash: toHex(x.hash) })) },
        `${log.entries.map((x) => `${String(x.seq).padStart(5)}  ${x.kind.padEnd(16)} ${toHex(x.hash)}`).join("\n")}\naudit log verified: ${log.head.seq} entries, every one enclave-signed and chained from GENESIS`);
      return;
    }
    default:
      throw new CleanroomError("usage", `unknown command ${JSON.stringify(command)}\n${HELP[""]}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command = "", ...rest] = argv;
  if (command === "" || command === "--help" || command === "-h") {
    process.stdout.write(HELP[""] + "\n");
    return command === "" ? 2 : 0;
  }
  try {
    const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
    if (values.help) {
      process.stdout.write((HELP[command] ?? HELP[""]) + "\n");
      return 0;
    }
    await run(command, values as Flags, positionals);
    return 0;
  } catch (e) {
    if (e instanceof CleanroomError) {
      process.stderr.write(`error [${e.code}]: ${e.message}\n`);
      return e.code === "usage" ? 2 : 1;
    }
    if ((e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`error [usage]: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
