// A party's keys on its own machine. The files have the layout the Python client writes
// (<party>.key.json secret, <party>.pub.json for `cleanroom policy bind-keys`), so either
// client can use the other's keys; they are not part of the wire.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { equal, fromHex, toHex } from "./bytes.js";
import { ed25519Public, random, x25519Public } from "./crypto.js";
import { CleanroomError } from "./errors.js";
import { Policy } from "./policy.js";

export interface PartyKeys { party: string; seed: Uint8Array; resultPrivate: Uint8Array; signingPublic: Uint8Array; resultPublic: Uint8Array }

export function generateKeys(party: string): PartyKeys {
  const seed = random(32);
  const resultPrivate = random(32);
  return { party, seed, resultPrivate, signingPublic: ed25519Public(seed), resultPublic: x25519Public(resultPrivate) };
}

export function saveKeys(k: PartyKeys, dir: string): { secret: string; pub: string } {
  mkdirSync(dir, { recursive: true });
  const secret = join(dir, `${k.party}.key.json`);
  const pub = join(dir, `${k.party}.pub.json`);
  if (existsSync(secret)) throw new CleanroomError("usage", `${secret} exists; not overwritten`);
  const pubDoc = { signing_key: toHex(k.signingPublic), result_key: toHex(k.resultPublic) };
  writeFileSync(secret, JSON.stringify({ format: 1, party: k.party, signing_key: toHex(k.seed), result_key: toHex(k.resultPrivate), public: pubDoc }, null, 2) + "\n", { mode: 0o600 });
  chmodSync(secret, 0o600);
  writeFileSync(pub, JSON.stringify({ format: 1, party: k.party, ...pubDoc }, null, 2) + "\n");
  return { secret, pub };
}

export function loadKeys(file: string): PartyKeys {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new CleanroomError("usage", `${file}: cannot read a key file (${(e as Error).message})`);
  }
  if (j.format !== 1 || typeof j.party !== "string") throw new CleanroomError("usage", `${file}: not a format 1 key file`);
  const seed = fromHex(String(j.signing_key), `${file} signing_key`, 32);
  const resultPrivate = fromHex(String(j.result_key), `${file} result_key`, 32);
  return { party: j.party, seed, resultPrivate, signingPublic: ed25519Public(seed), resultPublic: x25519Public(resultPrivate) };
}

/** The policy must hold exactly these public keys for the party, or nothing will verify. */
export function checkKeysInPolicy(k: PartyKeys, policy: Policy): void {
  const p = policy.parties.get(k.party);
  if (!p) throw new CleanroomError("usage", `the policy has no party ${k.party}`);
  if (!equal(p.signingKey, k.signingPublic) || !equal(p.resultKey, k.resultPublic)) {
    throw new CleanroomError("usage", `the policy's keys for ${k.party} are not the ones in the key file (bind them into the policy first)`);
  }
}
