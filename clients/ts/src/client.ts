// One party's operations against a host: attest, upload, query, fetch a result, and check
// the uploads list against the signed audit log.
import { readFileSync } from "node:fs";
import { equal, fromB64, fromHex, toB64, toHex } from "./bytes.js";
import { Enclave, verifyBundle } from "./attestation.js";
import { AuditEntry, TrustStore, verifyAuditLog } from "./audit.js";
import { random, requireSignature, sha256, sign } from "./crypto.js";
import { parseDocument } from "./documents.js";
import { CleanroomError } from "./errors.js";
import { field, Host } from "./http.js";
import { PartyKeys } from "./keys.js";
import { canonicalEncode, isMap, Value, ValueMap } from "./msgpack.js";
import { checkTemplateArgs, instantiate, normalisePlan, TemplateArgs } from "./plan.js";
import { dataset, Policy } from "./policy.js";
import { VerifierPolicy } from "./quote.js";
import { Expectation, openResult, verifySignedResult } from "./result.js";
import { checkReceipt, idempotencyKeyFor, prepareUpload, readCsvTable } from "./upload.js";

export type QuerySpec =
  | { kind: "plan"; plan: Value; sql?: string }
  | { kind: "template"; id: string; args: TemplateArgs }
  | { kind: "analysis"; id: string; params: ValueMap };

export interface QueryOutcome { queryId: Uint8Array; doc: ValueMap; signed: Uint8Array }

const now = (): number => Math.floor(Date.now() / 1000);

export class PartyClient {
  constructor(
    readonly host: Host, readonly policy: Policy, readonly verifier: VerifierPolicy,
    readonly trust = new TrustStore(), readonly collateral?: string,
  ) {}

  /** A fresh nonce, the eleven checks, then sig_pub pinned for the collaboration. */
  async attest(at = now()): Promise<Enclave> {
    const nonce = random(32);
    const bundle = await this.host.get(`/v1/attestation?nonce=${toHex(nonce)}`);
    const enclave = verifyBundle(bundle, { policy: this.verifier, ownPolicy: this.policy.bytes, nonce, now: at, collateral: this.collateral });
    this.trust.pin(this.policy.collaborationId, enclave.sigPub);
    return enclave;
  }

  async auditLog(enclave: Enclave): Promise<AuditEntry[]> {
    const body = await this.host.get("/v1/audit?after=0");
    const entries = (body as { entries?: unknown })?.entries;
    if (!Array.isArray(entries) || entries.some((e) => typeof e !== "string")) throw new CleanroomError("bad_message", "audit log: entries must be base64 strings");
    return verifyAuditLog(entries as string[], enclave.sigPub, this.policy.collaborationId).entries;
  }

  private observe(enclave: Enclave, head: Value): Promise<void> {
    return this.trust.observe(this.policy.collaborationId, head, () => this.auditLog(enclave));
  }

  async upload(enclave: Enclave, keys: PartyKeys, file: string, datasetName: string, o: { mode?: "create" | "append" | "replace"; skipInvalid?: boolean; chunkSize?: number; delimiter?: string } = {}): Promise<ValueMap> {
    const d = dataset(this.policy, datasetName);
    if (d.owner !== keys.party) throw new CleanroomError("policy_denied", `dataset ${d.name} is owned by ${d.owner}, not ${keys.party}`);
    const converted = readCsvTable(file, d, o.skipInvalid ?? false, o.delimiter);
    const mode = o.mode ?? "create";
    const prepared = await prepareUpload({
      policy: this.policy, dataset: d, party: keys.party, seed: keys.seed, encPub: enclave.encPub, converted, mode,
      chunkSize: o.chunkSize, idempotencyKey: idempotencyKeyFor(keys.party, d.name, mode, readFileSync(file)), now: now(),
    });
    const records = prepared.records();
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await records.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
    });
    const answer = await this.host.request("POST", "/v1/uploads", stream, { "content-type": "application/octet-stream" });
    const receipt = fromB64(field<string>(answer, "receipt", "string", "upload answer"), "upload answer receipt");
    requireSignature(enclave.sigPub, "upload_receipt", receipt, fromB64(field<string>(answer, "signature", "string", "upload answer"), "upload answer signature"), "upload receipt");
    const doc = parseDocument("upload_receipt", receipt);
    checkReceipt(doc, this.policy, prepared, converted.table.rows);
    if (doc.simulated !== enclave.simulated) throw new CleanroomError("bad_message", "upload receipt: simulated does not agree with the attestation");
    await this.observe(enclave, doc.audit_head);
    return doc;
  }

  /** The request document and the params its result must carry. */
  buildRequest(keys: PartyKeys, spec: QuerySpec): { doc: ValueMap; params: Value | undefined } {
    const doc: ValueMap = {
      collaboration_id: this.policy.collaborationId, policy_hash: this.policy.hash, party: keys.party,
      nonce: random(16), issued_at: now(), analysis: "", params: {},
    };
    if (spec.kind === "plan") {
      const plan = normalisePlan(spec.plan);
      doc.plan = plan;
      if (spec.sql !== undefined) {
        if (Buffer.byteLength(spec.sql, "utf8") > 16384) throw new CleanroomError("bad_message", "sql: over 16384 UTF-8 bytes");
        doc.sql = spec.sql;
      }
      return { doc, params: spec.sql === undefined ? { plan } : { plan, sql: spec.sql } };
    }
    if (spec.kind === "template") {
      const t = this.policy.templates.get(spec.id);
      if (!t) throw new CleanroomError("usage", `the policy has no template ${spec.id}`);
      checkTemplateArgs(this.policy, t, spec.args);
      doc.analysis = t.id;
      doc.params = spec.args;
      return { doc, params: { plan: instantiate(t, spec.args), sql: t.sql, template_params: spec.args } };
    }
    if (!this.policy.analyses.has(spec.id)) throw new CleanroomError("usage", `the policy has no analysis ${spec.id}`);
    doc.analysis = spec.id;
    doc.params = spec.params;
    // As the enclave reads them: group_by always (absent is []), metric if given, cohort if not empty.
    const read: ValueMap = { group_by: spec.params.group_by ?? [] };
    if (spec.params.metric !== undefined) read.metric = spec.params.metric;
    if (isMap(spec.params.cohort) && Object.keys(spec.params.cohort).length) read.cohort = spec.params.cohort;
    return { doc, params: read };
  }

  async query(enclave: Enclave, keys: PartyKeys, spec: QuerySpec, approvalTimeoutS = 120): Promise<QueryOutcome> {
    const { doc, params } = this.buildRequest(keys, spec);
    const bytes = canonicalEncode(doc);
    const queryId = sha256(bytes);
    let answer = await this.host.postJson("/v1/queries", { request: toB64(bytes), signature: toB64(sign(keys.seed, "query_request", bytes)) });
    if (field<string>(answer, "query_id", "string", "query answer") !== toHex(queryId)) throw new CleanroomError("bad_message", "query answer: another query_id");
    if ((answer as { status?: string }).status === "approval_required") answer = await this.awaitApproval(queryId, approvalTimeoutS);
    return this.verifyAnswer(enclave, keys, answer, queryId, { queryId, requestedBy: keys.party, params, simulated: enclave.simulated });
  }

  private async awaitApproval(queryId: Uint8Array, timeoutS: number): Promise<unknown> {
    const deadline = Date.now() + timeoutS * 1000;
    while (Date.now() < deadline) {
      const s = await this.host.get(`/v1/queries/${toHex(queryId)}`) as { status?: string; error?: { code?: string; message?: string } };
      if (s.status === "executed") return this.host.get(`/v1/results/${toHex(queryId)}`);
      if (s.status === "refused") throw new CleanroomError(s.error?.code ?? "policy_denied", `query refused: ${s.error?.message ?? ""}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    throw new CleanroomError("approval_timeout", `the approvers did not co-sign query ${toHex(queryId)} in ${timeoutS} s (nothing was charged)`);
  }

  async verifyAnswer(enclave: Enclave, keys: PartyKeys, answer: unknown, queryId: Uint8Array, want: Expectation): Promise<QueryOutcome> {
    const signed = await openResult(answer, queryId, keys.party, keys.resultPrivate, this.policy);
    const doc = verifySignedResult(signed, enclave.sigPub, this.policy, keys.party, want);
    await this.observe(enclave, doc.audit_head);
    return { queryId, doc, signed };
  }

  /** A stored result by query id: any recipient can fetch, open and verify its own. */
  async fetchResult(enclave: Enclave, keys: PartyKeys, queryIdHex: string): Promise<QueryOutcome> {
    const queryId = fromHex(queryIdHex, "query id", 32);
    const answer = await this.host.get(`/v1/results/${toHex(queryId)}`);
    return this.verifyAnswer(enclave, keys, answer, queryId, { queryId, simulated: enclave.simulated });
  }

  /** The host's (unsigned) uploads list, each entry checked against the enclave-signed audit log. */
  async verifiedUploads(enclave: Enclave): Promise<{ entry: Record<string, unknown>; verified: boolean; why?: string }[]> {
    const listed: Record<string, unknown>[] = [];
    for (let after = ""; ;) {
      const page = await this.host.get(`/v1/uploads?limit=1000${after ? `&after=${after}` : ""}`) as { uploads?: Record<string, unknown>[]; more?: boolean };
      if (!Array.isArray(page?.uploads)) throw new CleanroomError("bad_message", "uploads list: no uploads array");
      listed.push(...page.uploads);
      if (!page.more || page.uploads.length === 0) break;
      after = String(page.uploads[page.uploads.length - 1].upload_id);
    }
    const accepted = (await this.auditLog(enclave)).filter((e) => e.kind === "upload_accepted");
    return listed.map((entry) => {
      const e = accepted.find((a) => a.details.upload_id instanceof Uint8Array && toHex(a.details.upload_id) === entry.upload_id);
      if (!e) return { entry, verified: false, why: "no upload_accepted entry in the signed audit log" };
      const d = e.details;
      const same = d.party === entry.party && d.dataset === entry.dataset && d.rows === entry.rows
        && d.digest instanceof Uint8Array && typeof entry.digest === "string" && equal(d.digest, fromHex(entry.digest, "digest", 32));
      return same ? { entry, verified: true } : { entry, verified: false, why: "the audit entry says another party, dataset, row count or digest" };
    });
  }
}
