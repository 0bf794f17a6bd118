// The audit log (docs/wire.md#audit-log): verify the chain from GENESIS, and remember per
// collaboration the pinned sig_pub and the highest head seen, refusing forks and rollbacks.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { concat, equal, fromB64, fromHex, toHex } from "./bytes.js";
import { LABELS, requireSignature, sha256 } from "./crypto.js";
import { asHead, Head, parseDocument } from "./documents.js";
import { CleanroomError } from "./errors.js";
import { ValueMap } from "./msgpack.js";

export const GENESIS: Uint8Array = new Uint8Array(32);

export function entryHash(entryBytes: Uint8Array): Uint8Array {
  return sha256(concat(LABELS.audit_entry, entryBytes));
}

export interface AuditEntry { seq: number; kind: string; at: number; details: ValueMap; hash: Uint8Array; doc: ValueMap }

/** Verify `signed` envelopes (base64) as the whole chain from seq 1; returns entries and head. */
export function verifyAuditLog(entries: string[], sigPub: Uint8Array, collaborationId: string): { entries: AuditEntry[]; head: Head } {
  let prev = GENESIS;
  const out: AuditEntry[] = [];
  entries.forEach((b64, i) => {
    const what = `audit entry ${i + 1}`;
    const env = parseDocument("signed", fromB64(b64, what));
    const body = env.body as Uint8Array;
    requireSignature(sigPub, "audit_entry", body, env.signature as Uint8Array, what);
    const doc = parseDocument("audit_entry", body);
    if (doc.collaboration_id !== collaborationId) throw new CleanroomError("bad_message", `${what}: another collaboration`);
    if (doc.seq !== i + 1) throw new CleanroomError("rollback_detected", `${what}: seq ${String(doc.seq)}, expected ${i + 1} (an entry was dropped or reordered)`);
    if (!equal(doc.prev as Uint8Array, prev)) throw new CleanroomError("rollback_detected", `${what}: prev is not the hash of entry ${i}`);
    prev = entryHash(body);
    out.push({ seq: i + 1, kind: doc.kind as string, at: doc.at as number, details: doc.details as ValueMap, hash: prev, doc });
  });
  return { entries: out, head: { seq: out.length, hash: prev } };
}

interface Remembered { sig_pub: string; seq: number; hash: string }

/** $CLEANROOM_TS_HOME/trust.json (default ~/.cleanroom-ts): sig_pub and head per collaboration. */
export class TrustStore {
  readonly path: string;

  constructor(dir = process.env.CLEANROOM_TS_HOME ?? join(homedir(), ".cleanroom-ts")) {
    this.path = join(dir, "trust.json");
  }

  private load(): Record<string, Remembered> {
    return existsSync(this.path) ? JSON.parse(readFileSync(this.path, "utf8")) : {};
  }

  private save(all: Record<string, Remembered>): void {
    mkdirSync(join(this.path, ".."), { recursive: true });
    writeFileSync(this.path + ".tmp", JSON.stringify(all, null, 2) + "\n", { mode: 0o600 });
    renameSync(this.path + ".tmp", this.path);
  }

  /** Pin sig_pub on first sight; another one later is a replaced enclave state. */
  pin(collaborationId: string, sigPub: Uint8Array): void {
    const all = this.load();
    const r = all[collaborationId];
    if (r && r.sig_pub !== toHex(sigPub)) {
      throw new CleanroomError("rollback_detected", `the enclave's signing key for ${collaborationId} changed (remembered in ${this.path}): its state was replaced`);
    }
    if (!r) {
      all[collaborationId] = { sig_pub: toHex(sigPub), seq: 0, hash: toHex(GENESIS) };
      this.save(all);
    }
  }

  remembered(collaborationId: string): Head | null {
    const r = this.load()[collaborationId];
    return r ? { seq: r.seq, hash: fromHex(r.hash, "trust store hash", 32) } : null;
  }

  /**
   * Accept a head from a receipt or result: a newer one is remembered; the same seq must have
   * the same hash; an older one must be on the chain to the remembered head (`log` verifies it).
   */
  async observe(collaborationId: string, headValue: unknown, log: () => Promise<AuditEntry[]>): Promise<void> {
    const head = asHead(headValue as ValueMap);
    const all = this.load();
    const r = all[collaborationId];
    if (!r) throw new CleanroomError("rollback_detected", `no pinned enclave for ${collaborationId}`);
    const known: Head = { seq: r.seq, hash: fromHex(r.hash, "trust store hash", 32) };
    if (head.seq === known.seq) {
      if (!equal(head.hash, known.hash)) throw new CleanroomError("rollback_detected", `audit head ${head.seq} forked: another hash than the one remembered`);
      return;
    }
    const entries = await log();
    const onChain = (h: Head): boolean => h.seq === 0 ? equal(h.hash, GENESIS) : h.seq <= entries.length && equal(entries[h.seq - 1].hash, h.hash);
    if (!onChain(head) || !onChain(known)) {
      throw new CleanroomError("rollback_detected", `audit head ${head.seq} is not on the chain through the remembered head ${known.seq}`);
    }
    if (head.seq > known.seq) {
      all[collaborationId] = { ...r, seq: head.seq, hash: toHex(head.hash) };
      this.save(all);
    }
  }
}
