// The CRL checks @phala/dcap-qvl's JavaScript port leaves out (it reads the revoked serials but
// neither verifies a CRL's signature nor its dates): a minimal DER reader for CertificateList.
import { verify as nodeVerify, X509Certificate } from "node:crypto";
import { CleanroomError } from "./errors.js";

interface Tlv { tag: number; start: number; body: number; end: number }

function readTlv(b: Uint8Array, at: number): Tlv {
  if (at + 2 > b.length) throw new Error("truncated DER");
  const tag = b[at];
  let len = b[at + 1];
  let body = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || body + n > b.length) throw new Error("bad DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[body + i];
    body += n;
  }
  if (body + len > b.length) throw new Error("truncated DER");
  return { tag, start: at, body, end: body + len };
}

function children(b: Uint8Array, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.body; at < t.end; ) {
    const c = readTlv(b, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

function readTime(b: Uint8Array, t: Tlv): number {
  const s = Buffer.from(b.subarray(t.body, t.end)).toString("ascii");
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    : t.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : null;
  if (!m) throw new Error("bad CRL time");
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
}

export interface Crl { tbs: Uint8Array; signature: Uint8Array; thisUpdate: number; nextUpdate: number | null }

export function parseCrl(der: Uint8Array): Crl {
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) throw new Error("not one DER SEQUENCE");
  const [tbs, _alg, sig] = children(der, top);
  if (!tbs || tbs.tag !== 0x30 || !sig || sig.tag !== 0x03 || der[sig.body] !== 0) throw new Error("not a CertificateList");
  const fields = children(der, tbs);
  let i = fields[0]?.tag === 0x02 ? 1 : 0; // optional version
  i += 2; // signature algorithm, issuer
  const thisUpdate = readTime(der, fields[i]);
  const next = fields[i + 1];
  const nextUpdate = next && (next.tag === 0x17 || next.tag === 0x18) ? readTime(der, next) : null;
  return { tbs: der.subarray(tbs.start, tbs.end), signature: der.subarray(sig.body + 1, sig.end), thisUpdate, nextUpdate };
}

function pemCerts(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

function crlBytes(v: unknown, name: string): Uint8Array {
  if (typeof v === "string" && /^[0-9a-fA-F]*$/.test(v)) return new Uint8Array(Buffer.from(v, "hex"));
  if (Array.isArray(v)) return new Uint8Array(v as number[]);
  throw new CleanroomError("quote_invalid", `collateral ${name}: not a DER CRL`);
}

/**
 * Both CRLs of the collateral are signed by their CA (the root CRL by the trust anchor, the
 * PCK CRL by the first certificate of its issuer chain, which must chain to the anchor), and
 * `now` lies in their validity. Signature failures are `quote_invalid`, dates `collateral_expired`.
 */
export function checkCrls(collateral: Record<string, unknown>, rootDer: Uint8Array, now: number, pckLeafPem?: string): void {
  const root = new X509Certificate(Buffer.from(rootDer));
  const chain = pemCerts(String(collateral.pck_crl_issuer_chain ?? ""));
  if (chain.length === 0) throw new CleanroomError("quote_invalid", "collateral pck_crl_issuer_chain: no certificate");
  // The PCK CRL must be the one of the CA that issued the quote's PCK certificate, not another
  // CA's valid CRL that lists none of its revocations.
  const leaf = pckLeafPem === undefined ? undefined : pemCerts(pckLeafPem)[0];
  if (pckLeafPem !== undefined && (!leaf || !leaf.checkIssued(chain[0]) || !leaf.verify(chain[0].publicKey))) {
    throw new CleanroomError("quote_invalid", "collateral pck_crl: not the CRL of the CA that issued the quote's PCK certificate");
  }
  for (let i = 0; i < chain.length; i++) {
    const issuer = i + 1 < chain.length ? chain[i + 1] : root;
    if (!chain[i].verify(issuer.publicKey)) {
      throw new CleanroomError("quote_invalid", "collateral pck_crl_issuer_chain: does not chain to the trust anchor");
    }
  }
  const crls: [string, Uint8Array, X509Certificate][] = [
    ["root_ca_crl", crlBytes(collateral.root_ca_crl, "root_ca_crl"), root],
    ["pck_crl", crlBytes(collateral.pck_crl, "pck_crl"), chain[0]],
  ];
  const parsed = crls.map(([name, der, issuer]) => {
    let crl: Crl;
    try {
      crl = parseCrl(der);
    } catch (e) {
      throw new CleanroomError("quote_invalid", `collateral ${name}: ${(e as Error).message}`);
    }
    if (!nodeVerify("sha256", crl.tbs, issuer.publicKey, crl.signature)) {
      throw new CleanroomError("quote_invalid", `collateral ${name}: its signature does not verify with its CA`);
    }
    return [name, crl] as const;
  });
  for (const [name, crl] of parsed) {
    if (now < crl.thisUpdate || (crl.nextUpdate !== null && now > crl.nextUpdate)) {
      throw new CleanroomError("collateral_expired", `collateral ${name}: not valid at ${now}`);
    }
  }
}
